// The MPI layer (include/sdsgsm/distributed.hpp).
#include "sdsgsm/distributed.hpp"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm_config.hpp"

#if SDSGSM_HAVE_MPI
#include <mpi.h>
#endif

namespace sdsgsm::dist {
namespace {

int g_rank = 0, g_size = 1, g_local = 1;
bool g_started = false;

/// True when a launcher (OpenMPI's mpirun, or a PMI/PMIx one) started this process.
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

#if SDSGSM_HAVE_MPI
void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw Error(fmt::format("MPI: {} failed (code {})", what, rc));
}
#endif

}  // namespace

void init(int* argc, char*** argv) {
#if SDSGSM_HAVE_MPI
  if (!launched_by_mpirun()) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  g_started = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &g_local);
  MPI_Comm_free(&local);
#else
  (void)argc;
  (void)argv;
  const char* world = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (world != nullptr && std::atoi(world) > 1) {
    std::fprintf(stderr,
                 "sdsgsm: error: launched by mpirun, but this sdsgsm was built without MPI (install "
                 "libopenmpi-dev and rebuild); every rank would do the whole job\n");
    std::exit(1);
  }
#endif
}

void finalize() {
#if SDSGSM_HAVE_MPI
  if (g_started) MPI_Finalize();
  g_started = false;
#endif
}

int rank() { return g_rank; }
int size() { return g_size; }
int local_size() { return g_local; }
bool is_root() { return g_rank == 0; }

bool built_with_mpi() {
#if SDSGSM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void abort_all(const std::string& message) {
  if (g_size > 1) {
    std::fprintf(stderr, "sdsgsm: error: [rank %d of %d] %s\n", g_rank, g_size, message.c_str());
    std::fflush(stderr);
#if SDSGSM_HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    std::exit(1);
  }
  std::fprintf(stderr, "sdsgsm: error: %s\n", message.c_str());
}

void send_bytes(int to, const std::string& bytes) {
#if SDSGSM_HAVE_MPI
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    throw Error("MPI: a message over 2 GiB (use a smaller --batch-size)");
  }
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, 0, MPI_COMM_WORLD), "send");
#else
  (void)to;
  (void)bytes;
  throw Error("internal: send_bytes without MPI");
#endif
}

std::string recv_bytes(int from) {
#if SDSGSM_HAVE_MPI
  MPI_Status status;
  check(MPI_Probe(from, 0, MPI_COMM_WORLD, &status), "probe");
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), "get_count");
  std::string out(static_cast<size_t>(count), '\0');
  check(MPI_Recv(out.data(), count, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "recv");
  return out;
#else
  (void)from;
  throw Error("internal: recv_bytes without MPI");
#endif
}

int64_t broadcast(int64_t value) {
#if SDSGSM_HAVE_MPI
  if (g_size > 1) check(MPI_Bcast(&value, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "broadcast");
#endif
  return value;
}

void barrier() {
#if SDSGSM_HAVE_MPI
  if (g_size > 1) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
#endif
}

}  // namespace sdsgsm::dist
