# Finds tapegrad's dependencies, all from Debian packages, and exposes each as
# an imported target:
#   OpenMP::OpenMP_C   libgomp (gcc)
#   tapegrad_blas      CBLAS; OpenBLAS's OpenMP build by default, so its threads
#                      are the same OpenMP threads as ours and do not compete
#   hdf5::hdf5         the HDF5 C library (libhdf5-dev)
#   ZLIB::ZLIB, PNG::PNG
#   criterion          Criterion, through pkg-config (tests only)

find_package(OpenMP REQUIRED COMPONENTS C)
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)

find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT TARGET hdf5::hdf5)
    add_library(hdf5::hdf5 INTERFACE IMPORTED)
    target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS})
    target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
    target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_C_DEFINITIONS})
endif()

set(TAPEGRAD_BLAS "OpenBLAS-OpenMP" CACHE STRING
    "CBLAS to link: OpenBLAS-OpenMP (Debian libopenblas-openmp-dev) or any vendor name FindBLAS accepts")
add_library(tapegrad_blas INTERFACE)
if(TAPEGRAD_BLAS STREQUAL "OpenBLAS-OpenMP")
    find_library(TAPEGRAD_OPENBLAS_LIBRARY openblas
        PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
    find_path(TAPEGRAD_OPENBLAS_INCLUDE cblas.h
        PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
    if(NOT TAPEGRAD_OPENBLAS_LIBRARY OR NOT TAPEGRAD_OPENBLAS_INCLUDE)
        message(FATAL_ERROR "OpenBLAS (OpenMP build) not found; install Debian's "
            "libopenblas-openmp-dev, or pass -DTAPEGRAD_BLAS=<vendor> for another CBLAS")
    endif()
    target_link_libraries(tapegrad_blas INTERFACE ${TAPEGRAD_OPENBLAS_LIBRARY})
    target_include_directories(tapegrad_blas INTERFACE ${TAPEGRAD_OPENBLAS_INCLUDE})
else()
    set(BLA_VENDOR ${TAPEGRAD_BLAS})
    find_package(BLAS REQUIRED)
    target_link_libraries(tapegrad_blas INTERFACE BLAS::BLAS)
endif()

if(TAPEGRAD_BUILD_TESTS)
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)
endif()
