#include <stdio.h>
#include <stdlib.h>
#include <png.h>

/* Writes an 8x8 gradient to the file named by argv[1], reads it back,
 * and prints what it read. */
int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: demo-png FILE.png\n");
        return 2;
    }
    png_image img = {0};
    img.version = PNG_IMAGE_VERSION;
    img.width = 8;
    img.height = 8;
    img.format = PNG_FORMAT_RGB;
    png_byte pixels[8 * 8 * 3];
    for (int i = 0; i < 8 * 8; i++) {
        pixels[3 * i] = (png_byte)(i * 4);
        pixels[3 * i + 1] = (png_byte)(255 - i * 4);
        pixels[3 * i + 2] = 128;
    }
    if (!png_image_write_to_file(&img, argv[1], 0, pixels, 0, NULL)) {
        fprintf(stderr, "demo-png: write: %s\n", img.message);
        return 1;
    }
    png_image back = {0};
    back.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&back, argv[1])) {
        fprintf(stderr, "demo-png: read: %s\n", back.message);
        return 1;
    }
    back.format = PNG_FORMAT_RGB;
    png_bytep buf = malloc(PNG_IMAGE_SIZE(back));
    if (buf == NULL || !png_image_finish_read(&back, NULL, buf, 0, NULL)) {
        fprintf(stderr, "demo-png: read: %s\n", back.message);
        return 1;
    }
    printf("%ux%u, first pixel %d,%d,%d, libpng %s\n", back.width, back.height, buf[0], buf[1], buf[2],
           png_get_libpng_ver(NULL));
    free(buf);
    return 0;
}
