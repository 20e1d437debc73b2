#include <stdio.h>
#include <json-c/json.h>

/* Parses a document, changes it and prints it back. */
int main(int argc, char **argv) {
    const char *doc = argc > 1 ? argv[1] : "{\"name\": \"nexis\", \"builds\": [1, 2]}";
    struct json_object *o = json_tokener_parse(doc);
    if (o == NULL) {
        fprintf(stderr, "demo-jsonc: not JSON: %s\n", doc);
        return 1;
    }
    struct json_object *builds;
    if (json_object_object_get_ex(o, "builds", &builds))
        json_object_array_add(builds, json_object_new_int(3));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return 0;
}
