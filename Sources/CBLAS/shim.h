// OpenBLAS through pkg-config (`pkg-config openblas` gives Debian's
// openblas-pthread include dir). The two OpenBLAS extensions are declared
// again (with the core-name query) so the module builds whichever cblas.h the alternatives system picks.
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
