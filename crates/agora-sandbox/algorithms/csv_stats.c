/* Summary statistics of every column of a CSV file with a header row:
 * for each column, how many values are numeric, their min, max, mean and
 * (population) standard deviation.
 * Parameters: file=NAME (default data.csv). */
#include <math.h>

#include "common.h"

typedef struct {
  long long count, text;
  double min, max, mean, m2;
} Column;

int main(int argc, char **argv) {
  read_params();
  CsvReader r;
  csv_open(&r, open_dataset(argc, argv));
  if (!csv_next(&r)) fail("the dataset is empty", NULL);
  int ncols = r.nfields;
  char *names = malloc(READ_CHUNK);
  const char *name_start[MAX_COLUMNS], *name_end[MAX_COLUMNS];
  size_t used = 0;
  for (int i = 0; i < ncols; i++) {
    size_t len = (size_t)(r.field_end[i] - r.field_start[i]);
    memcpy(names + used, r.field_start[i], len);
    name_start[i] = names + used;
    name_end[i] = names + used + len;
    used += len;
  }
  Column cols[MAX_COLUMNS];
  memset(cols, 0, sizeof cols);
  long long rows = 0;
  static double val[MAX_COLUMNS];
  static unsigned char ok[MAX_COLUMNS];
  int got;
  while ((got = csv_next_numbers(&r, val, ok, ncols)) >= 0) {
    if (got == 0) continue; /* blank line */
    rows++;
    int n = got < ncols ? got : ncols;
    for (int i = 0; i < n; i++) {
      Column *c = &cols[i];
      if (!ok[i]) { c->text++; continue; }
      double x = val[i];
      if (c->count == 0 || x < c->min) c->min = x;
      if (c->count == 0 || x > c->max) c->max = x;
      c->count++;
      double d = x - c->mean;
      c->mean += d / (double)c->count;
      c->m2 += d * (x - c->mean);
    }
  }
  printf("{\"rows\":%lld,\"columns\":[", rows);
  for (int i = 0; i < ncols; i++) {
    Column *c = &cols[i];
    printf("%s{\"name\":", i ? "," : "");
    json_string(name_start[i], name_end[i]);
    printf(",\"count\":%lld,\"non_numeric\":%lld", c->count, c->text);
    if (c->count) {
      fputs(",\"min\":", stdout); json_number(c->min);
      fputs(",\"max\":", stdout); json_number(c->max);
      fputs(",\"mean\":", stdout); json_number(c->mean);
      fputs(",\"stddev\":", stdout); json_number(sqrt(c->m2 / (double)c->count));
    }
    putchar('}');
  }
  puts("]}");
  return 0;
}
