# Tests of the command line around the config reader (included by
# tests/CMakeLists.txt):
#  - every malformed config in tests/configs/bad must make `ctrain summary`
#    exit 2 with the message its first line expects ("# expect: ...");
#  - test_config again under a decimal-comma locale (de_DE), built here
#    with localedef when the system has the locale sources, so number
#    parsing is checked to be locale-independent.

if(TARGET ctrain)
  file(GLOB CT_BAD_CONFIGS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/configs/bad/*.conf)
  foreach(conf ${CT_BAD_CONFIGS})
    get_filename_component(name ${conf} NAME_WE)
    add_test(NAME cli_bad_${name}
      COMMAND ${CMAKE_COMMAND} -DCTRAIN=$<TARGET_FILE:ctrain> -DCONF=${conf}
              -P ${CMAKE_CURRENT_SOURCE_DIR}/check_cli.cmake)
    set_tests_properties(cli_bad_${name} PROPERTIES LABELS unit TIMEOUT 60)
  endforeach()
endif()

find_program(CT_LOCALEDEF localedef)
if(TARGET test_config AND CT_LOCALEDEF AND EXISTS /usr/share/i18n/locales/de_DE)
  set(CT_LOCALE_DIR ${PROJECT_BINARY_DIR}/locale)
  if(NOT EXISTS ${CT_LOCALE_DIR}/de_DE.UTF-8)
    file(MAKE_DIRECTORY ${CT_LOCALE_DIR})
    # exits 1 on harmless warnings; the directory it writes is what counts
    execute_process(COMMAND ${CT_LOCALEDEF} -i de_DE -f UTF-8 ${CT_LOCALE_DIR}/de_DE.UTF-8
                    OUTPUT_QUIET ERROR_QUIET)
  endif()
  if(EXISTS ${CT_LOCALE_DIR}/de_DE.UTF-8)
    # glibc's newlocale leaks its LOCPATH search list; the plain test_config
    # run keeps leak checking for our code
    add_test(NAME test_config_locale COMMAND test_config)
    set_tests_properties(test_config_locale PROPERTIES LABELS unit TIMEOUT 300
      ENVIRONMENT "LOCPATH=${CT_LOCALE_DIR};CT_REQUIRE_LOCALE=1;ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()
