#include <stdio.h>
#include <string.h>
#include <expat.h>

/* Counts the elements of a document and prints the name attribute of
 * each <pkg>. */
static int elements;

static void XMLCALL start(void *data, const XML_Char *name, const XML_Char **attrs) {
    (void)data;
    elements++;
    if (strcmp(name, "pkg") != 0)
        return;
    for (int i = 0; attrs[i]; i += 2)
        if (strcmp(attrs[i], "name") == 0)
            printf("pkg %s\n", attrs[i + 1]);
}

static void XMLCALL end(void *data, const XML_Char *name) {
    (void)data;
    (void)name;
}

int main(int argc, char **argv) {
    const char *doc = argc > 1 ? argv[1] : "<corpus><pkg name=\"expat\"/><pkg name=\"zlib\"/></corpus>";
    XML_Parser p = XML_ParserCreate(NULL);
    XML_SetElementHandler(p, start, end);
    if (XML_Parse(p, doc, (int)strlen(doc), 1) == XML_STATUS_ERROR) {
        fprintf(stderr, "demo-expat: line %lu: %s\n", (unsigned long)XML_GetCurrentLineNumber(p),
                XML_ErrorString(XML_GetErrorCode(p)));
        return 1;
    }
    printf("%d elements, %s\n", elements, XML_ExpatVersion());
    XML_ParserFree(p);
    return 0;
}
