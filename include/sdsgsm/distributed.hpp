// Several processes, on one machine or many: a thin layer over MPI (OpenMPI) used by the
// evaluation runner. sdsgsm is built with MPI when CMake finds it (SDSGSM_HAVE_MPI) and is still
// a plain single-process program without it; MPI is started only when the process was launched
// by mpirun (so an MPI build run directly never touches the MPI runtime).
//
// Rank 0 is the root: it reads the resume state, receives every other rank's results and writes
// all output files. Errors abort every rank with the failing rank's message.
#pragma once

#include <string>

namespace sdsgsm::dist {

/// Starts MPI when launched by mpirun (and built with MPI); otherwise nothing.
void init(int* argc, char*** argv);
/// Ends MPI if it was started.
void finalize();

int rank();        ///< this process's rank (0 without MPI)
int size();        ///< number of processes (1 without MPI)
int local_size();  ///< processes on this machine (for the default thread count)
bool is_root();    ///< rank() == 0
bool built_with_mpi();

/// Prints "sdsgsm: error: [rank r of P] message" to stderr and, with several ranks, aborts all of
/// them (exit status 1); returns only in a single process.
void abort_all(const std::string& message);

/// Point-to-point byte messages (blocking). Without MPI they throw (never called with size 1).
void send_bytes(int to, const std::string& bytes);
std::string recv_bytes(int from);
/// Rank 0's value of `value` on every rank.
int64_t broadcast(int64_t value);
/// Waits for every rank.
void barrier();

}  // namespace sdsgsm::dist
