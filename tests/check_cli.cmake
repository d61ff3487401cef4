# Runs `ctrain summary CONF` and checks that it fails as CONF's first line
# says: exit code 2 and "ctrain: error: " with the expected text on stderr.
#   cmake -DCTRAIN=path/to/ctrain -DCONF=file.conf -P check_cli.cmake
if(NOT CTRAIN OR NOT CONF)
  message(FATAL_ERROR "usage: cmake -DCTRAIN=... -DCONF=... -P check_cli.cmake")
endif()

# file(READ), not file(STRINGS): the latter escapes ';' as a list would
file(READ ${CONF} head LIMIT 1024)
string(REGEX MATCH "^[^\r\n]*" first "${head}")
if(NOT first MATCHES "^# expect: ")
  message(FATAL_ERROR "${CONF}: the first line must be '# expect: <message text>'")
endif()
string(SUBSTRING "${first}" 10 -1 expect)

execute_process(COMMAND ${CTRAIN} summary ${CONF}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "exit code ${rc}, expected 2\nstderr: ${err}")
endif()
string(FIND "${err}" "ctrain: error: " at_prefix)
string(FIND "${err}" "${expect}" at)
if(at_prefix EQUAL -1 OR at EQUAL -1)
  message(FATAL_ERROR "stderr does not contain \"ctrain: error: \" and \"${expect}\":\n${err}")
endif()
