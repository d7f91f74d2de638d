#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include "cjpeg.h"

struct lab_error_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warned;
};

static void lab_error_exit(j_common_ptr cinfo) {
    struct lab_error_mgr *e = (struct lab_error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

// Keep the first warning; corrupt data is reported as a warning by libjpeg.
static void lab_emit_message(j_common_ptr cinfo, int level) {
    struct lab_error_mgr *e = (struct lab_error_mgr *)cinfo->err;
    if (level < 0 && !e->warned) {
        (*cinfo->err->format_message)(cinfo, e->message);
        e->warned = 1;
    }
}

// Errors longjmp back to the caller's setjmp; warnings are kept, not printed.
static struct jpeg_error_mgr *lab_error_init(struct lab_error_mgr *e) {
    memset(e, 0, sizeof *e);
    jpeg_std_error(&e->pub);
    e->pub.error_exit = lab_error_exit;
    e->pub.emit_message = lab_emit_message;
    return &e->pub;
}

static void copy_message(char *err, size_t errlen, const char *msg) {
    if (err && errlen) { strncpy(err, msg, errlen - 1); err[errlen - 1] = 0; }
}

// In place, 4 bytes per pixel in, 3 out. Adobe's files (the ones with its
// APP14 marker: Photoshop, and most CMYK JPEGs scraped from the web) store ink
// inverted, 255 = none; without the marker 255 = full ink.
static void cmyk_to_rgb(unsigned char *p, size_t pixels, int adobe) {
    for (size_t i = 0; i < pixels; i++) {
        int c = p[4 * i], m = p[4 * i + 1], y = p[4 * i + 2], k = p[4 * i + 3];
        if (!adobe) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        p[3 * i] = (unsigned char)((c * k + 127) / 255);
        p[3 * i + 1] = (unsigned char)((m * k + 127) / 255);
        p[3 * i + 2] = (unsigned char)((y * k + 127) / 255);
    }
}

int lab_jpeg_decode(const unsigned char *data, size_t size,
                    unsigned char **rgb, int *width, int *height,
                    char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct lab_error_mgr jerr;
    unsigned char *volatile buffer = NULL;
    *rgb = NULL;
    if (size == 0) { copy_message(err, errlen, "empty file"); return -1; }
    cinfo.err = lab_error_init(&jerr);
    if (setjmp(jerr.jump)) {
        copy_message(err, errlen, jerr.message);
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        return -1;
    }
    jpeg_CreateDecompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    // libjpeg converts YCCK to CMYK but neither to RGB: that last step is ours.
    int four = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = four ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (cinfo.output_components != (four ? 4 : 3)) {
        copy_message(err, errlen, "unsupported colour components");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    buffer = malloc((size_t)w * h * 4);
    if (!buffer) { copy_message(err, errlen, "out of memory"); jpeg_destroy_decompress(&cinfo); return -1; }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = buffer + (size_t)cinfo.output_scanline * w * (four ? 4 : 3);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (four) cmyk_to_rgb(buffer, (size_t)w * h, cinfo.saw_Adobe_marker);
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (jerr.warned) {
        copy_message(err, errlen, jerr.message);
        free(buffer);
        return -1;
    }
    *rgb = buffer;
    *width = w;
    *height = h;
    return 0;
}

int lab_jpeg_encode(const unsigned char *rgb, int width, int height, int quality,
                    unsigned char **out, unsigned long *outsize,
                    char *err, size_t errlen) {
    struct jpeg_compress_struct cinfo;
    struct lab_error_mgr jerr;
    *out = NULL;
    *outsize = 0;
    cinfo.err = lab_error_init(&jerr);
    if (setjmp(jerr.jump)) {
        copy_message(err, errlen, jerr.message);
        jpeg_destroy_compress(&cinfo);
        free(*out);
        *out = NULL;
        return -1;
    }
    jpeg_CreateCompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_compress_struct));
    jpeg_mem_dest(&cinfo, out, outsize);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return 0;
}

void lab_jpeg_free(void *p) { free(p); }
