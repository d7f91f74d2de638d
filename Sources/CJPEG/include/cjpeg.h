// A small C shim over libjpeg(-turbo): libjpeg reports errors by longjmp,
// which Swift cannot call, so decoding and encoding live here and return
// error codes with a message.
#ifndef LAB_CJPEG_H
#define LAB_CJPEG_H
#include <stddef.h>

// Decodes a JPEG held in memory to packed RGB (3 bytes per pixel).
// Returns 0 and sets *rgb (free with lab_jpeg_free), *width, *height; or
// returns -1 and writes a one-line reason into err. Warnings such as
// "Premature end of JPEG file" (a truncated file that libjpeg would silently
// pad with grey) are treated as errors.
int lab_jpeg_decode(const unsigned char *data, size_t size,
                    unsigned char **rgb, int *width, int *height,
                    char *err, size_t errlen);

// Encodes packed RGB at quality 1..100. Returns 0 and sets *out (free with
// lab_jpeg_free) and *outsize; or -1 with a reason in err.
int lab_jpeg_encode(const unsigned char *rgb, int width, int height, int quality,
                    unsigned char **out, unsigned long *outsize,
                    char *err, size_t errlen);

void lab_jpeg_free(void *p);
#endif
