/*
 * fuzz_config.c: libFuzzer target for the configuration reader
 * (gateway/core/config/config*.c), which parses whatever file an operator points it at.
 *
 * An input is a config file. The harness merges it over the defaults,
 * validates, prints the effective configuration, and merges that output
 * into a fresh configuration. Invariants, from config.h's contract:
 *  - a rejected file gives IG_EPARSE or IG_ECONFIG and a message that
 *    starts with the file's name;
 *  - an accepted file round-trips: the printed JSON merges back without an
 *    error, prints the same text again, and validates the same way;
 *  - the redacted printout is JSON too.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/core/config.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

#define ORIGIN "fuzz.json"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ig_log_threshold = IG_LOG_OFF;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ig_config_t c;
    char err[1024] = "";
    ig_config_init(&c);
    int rc = ig_config_merge_json(&c, (const char *)data, size, ORIGIN, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EPARSE || rc == IG_ECONFIG, "merge returned %d (%s)", rc,
                   ig_err_name(rc));
        FUZZ_CHECK(strncmp(err, ORIGIN ": ", strlen(ORIGIN) + 2) == 0,
                   "the error does not name the file: '%s'", err);
        ig_config_dispose(&c);
        return 0;
    }

    char verr[1024] = "";
    int vrc = ig_config_validate(&c, verr, sizeof verr);
    FUZZ_CHECK(vrc == 0 || vrc == IG_ECONFIG || vrc == IG_EINVAL, "validate returned %d (%s)", vrc,
               ig_err_name(vrc));
    FUZZ_CHECK(vrc == 0 || verr[0] != '\0', "validate failed without a message");

    char *printed = ig_config_to_json(&c, false);
    ig_config_t again;
    char err2[1024] = "";
    ig_config_init(&again);
    int rc2 = ig_config_merge_json(&again, printed, strlen(printed), "printed", err2, sizeof err2);
    FUZZ_CHECK(rc2 == 0, "the printed configuration does not merge back: %s\n%s", err2, printed);
    char *reprinted = ig_config_to_json(&again, false);
    FUZZ_CHECK(strcmp(printed, reprinted) == 0,
               "round trip changed the configuration:\n%s\n---\n%s", printed, reprinted);
    char verr2[1024] = "";
    int vrc2 = ig_config_validate(&again, verr2, sizeof verr2);
    FUZZ_CHECK(vrc == vrc2, "validation differs after the round trip: '%s' vs '%s'", verr, verr2);

    char *redacted = ig_config_to_json(&c, true);
    cJSON *parsed = cJSON_Parse(redacted);
    FUZZ_CHECK(parsed != NULL, "the redacted configuration is not JSON:\n%s", redacted);
    cJSON_Delete(parsed);

    free(redacted);
    free(reprinted);
    free(printed);
    ig_config_dispose(&again);
    ig_config_dispose(&c);
    return 0;
}
