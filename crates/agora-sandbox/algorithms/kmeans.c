/* Trains a k-means model on numeric columns of a CSV file and outputs its
 * parameters: the centroids, each cluster's size, and the inertia (sum of
 * squared distances to the nearest centroid). Centroids start from
 * k-means++ drawn with the job's randomness (getentropy), then Lloyd's
 * iterations run until no point changes cluster or `iterations` is reached;
 * the inertia is that of the last assignment.
 * Rows with a non-numeric cell in a chosen column are skipped and counted.
 * Parameters: columns=A,B,... (required, up to 16), k=N (1..64, default 3),
 * iterations=N (1..1000, default 50), file=NAME (default data.csv). */
#include <float.h>

#include "common.h"

#define MAX_DIMS 16

static unsigned long long g_rng;

/* The next number of a xorshift64* stream seeded from the job's randomness. */
static unsigned long long next_random(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545F4914F6CDD1DULL;
}

/* A uniform double in [0, 1). */
static double uniform(void) { return (double)(next_random() >> 11) * 0x1.0p-53; }

static double dist2(const double *a, const double *b, int d) {
  double s = 0;
  for (int i = 0; i < d; i++) { double t = a[i] - b[i]; s += t * t; }
  return s;
}

int main(int argc, char **argv) {
  read_params();
  const char *columns = param("columns", NULL);
  if (!columns) fail("missing parameter", "columns");
  long k = param_long("k", 3, 1, 64);
  long iterations = param_long("iterations", 50, 1, 1000);
  if (getentropy(&g_rng, sizeof g_rng) != 0) fail("no randomness", NULL);
  g_rng |= 1;
  CsvReader r;
  csv_open(&r, open_dataset(argc, argv));
  if (!csv_next(&r)) fail("the dataset is empty", NULL);
  int idx[MAX_DIMS], d = 0;
  char names[1024];
  if (strlen(columns) >= sizeof names) fail("columns list too long", NULL);
  strcpy(names, columns);
  const char *dim_name[MAX_DIMS];
  for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ",")) {
    if (d == MAX_DIMS) fail("at most 16 columns", NULL);
    dim_name[d] = tok;
    idx[d++] = csv_column(&r, tok);
  }
  if (d == 0) fail("missing parameter", "columns");
  size_t n = 0, cap = 1 << 12;
  long long skipped = 0;
  double *x = malloc(cap * (size_t)d * sizeof *x);
  if (!x) fail("out of memory", NULL);
  while (csv_next(&r)) {
    if (r.nfields == 1 && r.field_start[0] == r.field_end[0]) continue;
    if (n == cap) {
      cap *= 2;
      x = realloc(x, cap * (size_t)d * sizeof *x);
      if (!x) fail("out of memory", "the rows do not fit the memory limit");
    }
    int ok = 1;
    for (int j = 0; j < d && ok; j++)
      ok = idx[j] < r.nfields &&
           parse_number(r.field_start[idx[j]], r.field_end[idx[j]], &x[n * (size_t)d + (size_t)j]);
    if (ok) n++; else skipped++;
  }
  if ((long)n < k) fail("fewer usable rows than clusters", NULL);
  double *c = malloc((size_t)k * (size_t)d * sizeof *c);
  double *sum = malloc((size_t)k * (size_t)d * sizeof *sum);
  double *best = malloc(n * sizeof *best);
  int *label = malloc(n * sizeof *label);
  long long *size = calloc((size_t)k, sizeof *size);
  /* k-means++: the first centroid uniformly, each next one with probability
   * proportional to the squared distance to the nearest chosen so far. */
  memcpy(c, &x[(next_random() % n) * (size_t)d], (size_t)d * sizeof *c);
  for (size_t i = 0; i < n; i++) best[i] = dist2(&x[i * (size_t)d], c, d);
  for (long m = 1; m < k; m++) {
    double total = 0;
    for (size_t i = 0; i < n; i++) total += best[i];
    double target = uniform() * total;
    size_t pick = n - 1;
    for (size_t i = 0; i < n; i++) { target -= best[i]; if (target < 0) { pick = i; break; } }
    memcpy(&c[m * d], &x[pick * (size_t)d], (size_t)d * sizeof *c);
    for (size_t i = 0; i < n; i++) {
      double t = dist2(&x[i * (size_t)d], &c[m * d], d);
      if (t < best[i]) best[i] = t;
    }
  }
  for (size_t i = 0; i < n; i++) label[i] = -1;
  long iter = 0;
  double inertia = 0;
  for (int changed = 1; changed && iter < iterations; iter++) {
    changed = 0;
    inertia = 0;
    for (size_t i = 0; i < n; i++) {
      int arg = 0;
      double lo = DBL_MAX;
      for (int m = 0; m < k; m++) {
        double t = dist2(&x[i * (size_t)d], &c[m * d], d);
        if (t < lo) { lo = t; arg = m; }
      }
      if (label[i] != arg) { label[i] = arg; changed = 1; }
      inertia += lo;
    }
    /* An empty cluster keeps its centroid. */
    memset(sum, 0, (size_t)k * (size_t)d * sizeof *sum);
    memset(size, 0, (size_t)k * sizeof *size);
    for (size_t i = 0; i < n; i++) {
      size[label[i]]++;
      for (int j = 0; j < d; j++) sum[label[i] * d + j] += x[i * (size_t)d + (size_t)j];
    }
    for (int m = 0; m < k; m++)
      for (int j = 0; j < d && size[m]; j++) c[m * d + j] = sum[m * d + j] / (double)size[m];
  }
  printf("{\"k\":%ld,\"rows\":%zu,\"skipped\":%lld,\"iterations\":%ld,\"inertia\":", k, n, skipped, iter);
  json_number(inertia);
  fputs(",\"columns\":[", stdout);
  for (int j = 0; j < d; j++) {
    if (j) putchar(',');
    json_string(dim_name[j], dim_name[j] + strlen(dim_name[j]));
  }
  fputs("],\"clusters\":[", stdout);
  for (int m = 0; m < k; m++) {
    printf("%s{\"size\":%lld,\"centroid\":[", m ? "," : "", size[m]);
    for (int j = 0; j < d; j++) { if (j) putchar(','); json_number(c[m * d + j]); }
    fputs("]}", stdout);
  }
  puts("]}");
  return 0;
}
