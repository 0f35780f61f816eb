# Writes and installs the pkg-config files tapegrad.pc and tapegrad_f64.pc.
#
# Included from the top-level CMakeLists.txt after TapegradDependencies, whose
# find_package results (OpenBLAS or BLAS, OpenMP, HDF5, zlib, libpng) give the
# flags of the dependencies. Those are the absolute paths found at configure
# time, as in the exported CMake targets.
#
# prefix is written relative to the .pc file's own directory (${pcfiledir}),
# so the files stay correct for a prefix chosen at install time with
# `cmake --install build --prefix P`, unless CMAKE_INSTALL_LIBDIR is absolute.

# Converts a CMake link list into linker flags in `out_var`: absolute paths
# and flags pass through, bare names become -l<name>, and the debug-only
# entries of "debug;<lib>;optimized;<lib>" lists are dropped.
function(_tapegrad_link_flags out_var)
    set(flags "")
    set(skip_next FALSE)
    foreach(item IN LISTS ARGN)
        if(skip_next)
            set(skip_next FALSE)
        elseif(item STREQUAL "debug")
            set(skip_next TRUE)
        elseif(item STREQUAL "optimized" OR item STREQUAL "general")
            # The next entry applies to every build that is not Debug.
        elseif(item MATCHES "^-" OR IS_ABSOLUTE "${item}")
            list(APPEND flags "${item}")
        elseif(item MATCHES "::")
            message(FATAL_ERROR "tapegrad pkg-config: cannot write the imported target "
                "'${item}' as a linker flag; pass its library path instead")
        else()
            list(APPEND flags "-l${item}")
        endif()
    endforeach()
    list(REMOVE_DUPLICATES flags)
    list(JOIN flags " " joined)
    set(${out_var} "${joined}" PARENT_SCOPE)
endfunction()

# Writes <name>.pc for the library target `name`, with `extra_cflags` added to
# its Cflags, and installs it into <libdir>/pkgconfig.
function(tapegrad_install_pkg_config name extra_cflags description)
    # Public: tg_gemm in autograd/gemm.h is inline and calls CBLAS from the
    # user's code, and the libraries use OpenMP and libm.
    if(TAPEGRAD_BLAS STREQUAL "OpenBLAS-OpenMP")
        set(blas_cflags "-I${TAPEGRAD_OPENBLAS_INCLUDE}")
        set(blas_libs ${TAPEGRAD_OPENBLAS_LIBRARY})
    else()
        set(blas_cflags "")
        set(blas_libs ${BLAS_LINKER_FLAGS} ${BLAS_LIBRARIES})
    endif()
    _tapegrad_link_flags(public_libs ${blas_libs})
    set(public_libs "${public_libs} ${OpenMP_C_FLAGS} -lm")

    # Private: needed in the final link of a static library only.
    _tapegrad_link_flags(private_libs ${HDF5_C_LIBRARIES} ${PNG_LIBRARIES} ${ZLIB_LIBRARIES})

    get_target_property(type ${name} TYPE)
    if(type STREQUAL "STATIC_LIBRARY")
        set(TAPEGRAD_PC_LIBS "${private_libs} ${public_libs}")
        set(TAPEGRAD_PC_LIBS_PRIVATE "")
    else()
        set(TAPEGRAD_PC_LIBS "${public_libs}")
        set(TAPEGRAD_PC_LIBS_PRIVATE "${private_libs}")
    endif()

    set(TAPEGRAD_PC_CFLAGS "${blas_cflags} ${OpenMP_C_FLAGS} ${extra_cflags}")
    string(STRIP "${TAPEGRAD_PC_CFLAGS}" TAPEGRAD_PC_CFLAGS)
    set(TAPEGRAD_PC_NAME ${name})
    set(TAPEGRAD_PC_DESCRIPTION "${description}")

    if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
        set(TAPEGRAD_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
        set(TAPEGRAD_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
        set(pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
    else()
        # "lib/pkgconfig" gives "../..", "lib/x86_64-linux-gnu/pkgconfig" "../../..".
        file(RELATIVE_PATH up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
        string(REGEX REPLACE "/$" "" up "${up}")
        set(TAPEGRAD_PC_PREFIX "\${pcfiledir}/${up}")
        set(TAPEGRAD_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
        set(pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
    endif()

    configure_file(${PROJECT_SOURCE_DIR}/cmake/tapegrad.pc.in
        ${PROJECT_BINARY_DIR}/${name}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/${name}.pc DESTINATION ${pc_dir})
endfunction()
