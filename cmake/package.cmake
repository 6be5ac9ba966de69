# The Debian package: `cpack -G DEB` in the build folder gives sdsgsm_VERSION_ARCH.deb, everything
# `cmake --install` installs, under /usr (the Python package in /usr/lib/python3/dist-packages).
#   Depends: the shared libraries the binaries link (dpkg-shlibdeps: libtorch1.13, libfmt9, ...),
#            python3 and the python3-torch the Python module was built for.
#   Recommends: the -dev packages the headers and find_package(sdsgsm) need (LibTorch's,
#            nlohmann-json's, fmt's, spdlog's): installed by apt by default, left out with
#            --no-install-recommends where only the tool and the Python module are wanted.
set(CPACK_PACKAGE_NAME sdsgsm)
set(CPACK_PACKAGE_VENDOR "sdsgsm")
set(CPACK_PACKAGE_CONTACT "sdsgsm maintainers <maintainers@users.noreply.r-seed-3719928f.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "adversarial attacks on image classifiers (SD-SGSM and others), on LibTorch")
set(CPACK_PACKAGE_DESCRIPTION
    "The sdsgsm tool (attack, eval, compare, report, ...), the C++ library libsdsgsm with its headers,\n CMake package and pkg-config file, the Python module sdsgsm for python3-torch, and the shipped\n CIFAR-10 models resnet20, vgg7bn and resnet20-at (adversarially trained).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)  # libsdsgsm's shlibs file and the ldconfig trigger
set(_deps "python3")
if(SDSGSM_PYTHON_MODULE)
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" _torch_mm "${Torch_VERSION}")
  string(REGEX MATCH "[0-9]+$" _torch_minor "${_torch_mm}")
  string(REGEX MATCH "^[0-9]+" _torch_major "${_torch_mm}")
  math(EXPR _torch_next "${_torch_minor} + 1")
  string(APPEND _deps ", python3-torch (>= ${_torch_mm}), python3-torch (<< ${_torch_major}.${_torch_next})")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_deps}")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libtorch-dev, nlohmann-json3-dev, libfmt-dev, libspdlog-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${CMAKE_CURRENT_LIST_DIR}/debian/prerm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
