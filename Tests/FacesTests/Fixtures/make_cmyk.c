// One-off: re-encode an RGB JPEG as an Adobe-style (inverted) CMYK JPEG, transform 0.
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    struct jpeg_decompress_struct d; struct jpeg_error_mgr e1, e2;
    d.err = jpeg_std_error(&e1); jpeg_create_decompress(&d); jpeg_stdio_src(&d, in);
    jpeg_read_header(&d, TRUE); d.out_color_space = JCS_RGB; jpeg_start_decompress(&d);
    int w = d.output_width, h = d.output_height;
    unsigned char *rgb = malloc(w * h * 3), *cmyk = malloc(w * h * 4);
    while (d.output_scanline < h) { JSAMPROW r = rgb + d.output_scanline * w * 3; jpeg_read_scanlines(&d, &r, 1); }
    jpeg_finish_decompress(&d);
    for (int i = 0; i < w * h; i++) {
        int r = rgb[3*i], g = rgb[3*i+1], b = rgb[3*i+2];
        int k = 255 - (r > g ? (r > b ? r : b) : (g > b ? g : b));
        int c = k == 255 ? 0 : (255 - r - k) * 255 / (255 - k);
        int m = k == 255 ? 0 : (255 - g - k) * 255 / (255 - k);
        int y = k == 255 ? 0 : (255 - b - k) * 255 / (255 - k);
        // Adobe stores ink amounts inverted (255 = no ink).
        cmyk[4*i] = 255 - c; cmyk[4*i+1] = 255 - m; cmyk[4*i+2] = 255 - y; cmyk[4*i+3] = 255 - k;
    }
    struct jpeg_compress_struct c; c.err = jpeg_std_error(&e2); jpeg_create_compress(&c); jpeg_stdio_dest(&c, out);
    c.image_width = w; c.image_height = h; c.input_components = 4; c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c); jpeg_set_colorspace(&c, argc > 3 ? JCS_YCCK : JCS_CMYK); jpeg_set_quality(&c, 95, TRUE);
    c.write_Adobe_marker = TRUE;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) { JSAMPROW r = cmyk + c.next_scanline * w * 4; jpeg_write_scanlines(&c, &r, 1); }
    jpeg_finish_compress(&c); fclose(out); return 0;
}
