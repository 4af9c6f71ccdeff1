/* A histogram and exact quantiles of one numeric column of a CSV file.
 * Every value is kept and sorted, so memory grows with the column (the
 * sandbox's memory cap bounds it). Non-numeric cells are counted, not used.
 * Parameters: column=NAME (required), file=NAME (default data.csv),
 * bins=N (1..1000, default 10), quantiles=Q,Q,... (each in [0,1], default
 * 0.5,0.9,0.99); a quantile is linearly interpolated between ranks. */
#include "common.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  read_params();
  const char *column = param("column", NULL);
  if (!column) fail("missing parameter", "column");
  long bins = param_long("bins", 10, 1, 1000);
  const char *qs = param("quantiles", "0.5,0.9,0.99");
  CsvReader r;
  csv_open(&r, open_dataset(argc, argv));
  if (!csv_next(&r)) fail("the dataset is empty", NULL);
  int col = csv_column(&r, column);
  size_t n = 0, cap = 1 << 16;
  long long text = 0;
  double *v = malloc(cap * sizeof *v);
  if (!v) fail("out of memory", NULL);
  while (csv_next(&r)) {
    double x;
    if (col >= r.nfields || !parse_number(r.field_start[col], r.field_end[col], &x)) {
      if (!(r.nfields == 1 && r.field_start[0] == r.field_end[0])) text++;
      continue;
    }
    if (n == cap) {
      cap *= 2;
      v = realloc(v, cap * sizeof *v);
      if (!v) fail("out of memory", "the column does not fit the memory limit");
    }
    v[n++] = x;
  }
  if (n == 0) fail("the column has no numeric values", column);
  qsort(v, n, sizeof *v, cmp_double);
  double lo = v[0], hi = v[n - 1], width = (hi - lo) / (double)bins;
  long long *counts = calloc((size_t)bins, sizeof *counts);
  for (size_t i = 0; i < n; i++) {
    long b = width > 0 ? (long)((v[i] - lo) / width) : 0;
    counts[b >= bins ? bins - 1 : b]++;
  }
  printf("{\"column\":");
  json_string(column, column + strlen(column));
  printf(",\"count\":%zu,\"non_numeric\":%lld,\"min\":", n, text);
  json_number(lo);
  fputs(",\"max\":", stdout); json_number(hi);
  fputs(",\"histogram\":[", stdout);
  for (long b = 0; b < bins; b++) {
    printf("%s{\"from\":", b ? "," : "");
    json_number(lo + width * (double)b);
    fputs(",\"to\":", stdout);
    json_number(b == bins - 1 ? hi : lo + width * (double)(b + 1));
    printf(",\"count\":%lld}", counts[b]);
  }
  fputs("],\"quantiles\":[", stdout);
  const char *p = qs;
  for (int first = 1; *p; first = 0) {
    char *end;
    double q = strtod(p, &end);
    if (end == p || q < 0 || q > 1 || (*end && *end != ',')) fail("bad quantile list", qs);
    double rank = q * (double)(n - 1);
    size_t i = (size_t)rank;
    double frac = rank - (double)i;
    double value = i + 1 < n ? v[i] + (v[i + 1] - v[i]) * frac : v[i];
    printf("%s{\"q\":", first ? "" : ",");
    json_number(q);
    fputs(",\"value\":", stdout);
    json_number(value);
    putchar('}');
    p = *end ? end + 1 : end;
  }
  puts("]}");
  return 0;
}
