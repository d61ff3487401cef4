# The bad-input suite (label unit): tests/badinput/cases.py, a table of
# more than a hundred bad configs, data files of every format, model files,
# command lines, full disks (a tmpfs, as root) and signals; run.py checks
# the exit code, the message, that nothing crashed or hung, and that every
# file that existed before is byte-identical after. Debian's python3 first
# (python3-h5py installs there; the HDF5 cases are SKIPPED without it).
find_program(CT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT CT_PYTHON3)
  find_program(CT_PYTHON3 python3)
endif()
if(CT_PYTHON3 AND TARGET ctrain)
  add_test(NAME badinput COMMAND ${CT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run.py $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} -j 2)
  set_tests_properties(badinput PROPERTIES LABELS unit TIMEOUT 600)
endif()

# The README's quick-start commands, in order, on a fresh clone (label
# readme: it trains Fashion-MNIST for 5 epochs, about a minute).
if(TARGET ctrain)
  add_test(NAME readme_quickstart COMMAND bash ${PROJECT_SOURCE_DIR}/tests/readme.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  set_tests_properties(readme_quickstart PROPERTIES LABELS readme TIMEOUT 900)
endif()
