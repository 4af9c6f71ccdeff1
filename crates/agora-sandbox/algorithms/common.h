/* Shared helpers for agora's example compute-to-data algorithms.
 *
 * An algorithm is a WASI preview 1 command: the dataset is mounted read-only
 * at /data (natively, argv[1] names the directory instead, so the same code
 * can be benchmarked outside the sandbox), parameters arrive on stdin as
 * whitespace-separated key=value tokens, and the result is one JSON document
 * on stdout. A bad parameter or dataset exits with code 2 and a message on
 * stderr. Everything here is deterministic: no clock, and randomness only
 * from getentropy, which the sandbox derives from the job's seed. */
#ifndef AGORA_ALGORITHM_COMMON_H
#define AGORA_ALGORITHM_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARAMS 32
#define MAX_COLUMNS 256
#define READ_CHUNK (1 << 20)

static char g_params_buf[4096];
static char *g_keys[MAX_PARAMS];
static char *g_values[MAX_PARAMS];
static int g_nparams;

/* Stop with exit code 2 and a message: the job's input was unusable. */
static inline void fail(const char *what, const char *detail) {
  fprintf(stderr, "error: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(2);
}

/* Read key=value tokens from stdin. */
static inline void read_params(void) {
  size_t len = 0;
  ssize_t got;
  while ((got = read(0, g_params_buf + len, sizeof g_params_buf - 1 - len)) > 0) {
    len += (size_t)got;
    if (len == sizeof g_params_buf - 1) fail("parameters longer than 4095 bytes", NULL);
  }
  g_params_buf[len] = 0;
  char *p = g_params_buf;
  while (*p) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') *p++ = 0;
    if (!*p) break;
    char *tok = p;
    while (*p && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') p++;
    char *eq = strchr(tok, '=');
    if (!eq || eq > p) fail("parameter is not key=value", tok);
    if (g_nparams == MAX_PARAMS) fail("too many parameters", NULL);
    *eq = 0;
    g_keys[g_nparams] = tok;
    g_values[g_nparams++] = eq + 1;
  }
}

/* The value of parameter `key`, or `fallback`. */
static inline const char *param(const char *key, const char *fallback) {
  for (int i = 0; i < g_nparams; i++)
    if (strcmp(g_keys[i], key) == 0) return g_values[i];
  return fallback;
}

/* A positive integer parameter within [lo, hi]. */
static inline long param_long(const char *key, long fallback, long lo, long hi) {
  const char *v = param(key, NULL);
  if (!v) return fallback;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || end == v || n < lo || n > hi) fail("parameter out of range", key);
  return n;
}

/* Open the dataset file named by the `file` parameter (default data.csv). */
static inline int open_dataset(int argc, char **argv) {
  const char *name = param("file", "data.csv");
  if (strchr(name, '/') || strcmp(name, "..") == 0) fail("file must be a plain name", name);
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", argc > 1 ? argv[1] : "/data", name);
  int fd = open(path, O_RDONLY);
  if (fd < 0) fail("cannot open dataset file", name);
  return fd;
}

/* Parse a decimal number from [s, end): sign, digits, fraction, exponent.
 * Returns 1 and sets *out when the whole field is a number. */
static inline int parse_number(const char *s, const char *end, double *out) {
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  while (s < end && *s == ' ') s++;
  while (end > s && end[-1] == ' ') end--;
  if (s == end) return 0;
  int neg = 0;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  unsigned long long mant = 0;
  int digits = 0, scale = 0, any = 0;
  for (; s < end && *s >= '0' && *s <= '9'; s++, any = 1) {
    if (digits < 19) { mant = mant * 10 + (unsigned)(*s - '0'); if (mant) digits++; }
    else scale++;
  }
  if (s < end && *s == '.') {
    for (s++; s < end && *s >= '0' && *s <= '9'; s++, any = 1)
      if (digits < 19) { mant = mant * 10 + (unsigned)(*s - '0'); if (mant) digits++; scale--; }
  }
  if (!any) return 0;
  if (s < end && (*s == 'e' || *s == 'E')) {
    s++;
    int eneg = 0, e = 0, edig = 0;
    if (s < end && (*s == '-' || *s == '+')) eneg = *s++ == '-';
    for (; s < end && *s >= '0' && *s <= '9'; s++, edig = 1)
      if (e < 10000) e = e * 10 + (*s - '0');
    if (!edig) return 0;
    scale += eneg ? -e : e;
  }
  if (s != end) return 0;
  double v = (double)mant;
  while (scale > 22) { v *= 1e22; scale -= 22; }
  while (scale < -22) { v /= 1e22; scale += 22; }
  v = scale >= 0 ? v * pow10[scale] : v / pow10[-scale];
  *out = neg ? -v : v;
  return 1;
}

/* A CSV reader over a file descriptor: one line at a time, fields split on
 * commas outside double quotes (quotes are kept; a quoted field is text). */
typedef struct {
  int fd;
  char *buf;
  size_t len, pos;
  int eof;
  const char *field_start[MAX_COLUMNS];
  const char *field_end[MAX_COLUMNS];
  int nfields;
} CsvReader;

static inline void csv_open(CsvReader *r, int fd) {
  memset(r, 0, sizeof *r);
  r->fd = fd;
  /* Room for a '\n' sentinel after the data and a word's worth of
   * padding, so the scanners below may read 8 bytes at a time without
   * bounds checks. */
  r->buf = malloc(READ_CHUNK * 2 + 16);
  if (!r->buf) fail("out of memory", NULL);
  /* Only the sentinel needs a value: whatever lies after it never decides
   * anything (every scan stops at the first match, at or before it). */
  r->buf[0] = '\n';
}

static inline int csv_refill(CsvReader *r, size_t keep);

/* Split the next line into fields in one pass over its bytes; returns 0 at
 * the end of the file. A line may end in \n, \r\n or the end of the file. */
static inline int csv_next(CsvReader *r) {
  for (;;) {
    char *start = r->buf + r->pos, *end = r->buf + r->len, *c = start, *f = start;
    int n = 0, quoted = 0;
    for (; c < end; c++) {
      char ch = *c;
      if (ch == '\n') break;
      if (ch == ',') {
        if (quoted) continue;
        if (n == MAX_COLUMNS - 1) fail("more than 256 columns", NULL);
        r->field_start[n] = f; r->field_end[n++] = c; f = c + 1;
      } else if (ch == '"') {
        quoted = !quoted;
      }
    }
    if (c < end || (r->eof && start < end)) {
      r->pos = (size_t)(c - r->buf) + (c < end ? 1 : 0);
      char *line_end = c;
      if (line_end > f && line_end[-1] == '\r') line_end--;
      r->field_start[n] = f; r->field_end[n++] = line_end;
      r->nfields = n;
      return 1;
    }
    if (!csv_refill(r, r->pos)) return 0;
  }
}

/* Read more of the file, keeping the unfinished line from `keep` on;
 * returns 0 if the file had nothing more. */
static inline int csv_refill(CsvReader *r, size_t keep) {
  if (r->eof) return 0;
  size_t rest = r->len - keep;
  if (rest >= READ_CHUNK) fail("a line is longer than 1 MiB", NULL);
  memmove(r->buf, r->buf + keep, rest);
  r->len = rest; r->pos = 0;
  ssize_t got = read(r->fd, r->buf + r->len, READ_CHUNK);
  if (got < 0) fail("cannot read the dataset", NULL);
  if (got == 0) r->eof = 1;
  r->len += (size_t)got;
  r->buf[r->len] = '\n'; /* the sentinel */
  return 1;
}

/* Word-at-a-time helpers (little-endian, as wasm32 and x86-64 are). */
#define BYTES_01 0x0101010101010101ULL
#define BYTES_80 0x8080808080808080ULL

static inline uint64_t load8(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* A mask whose lowest set bit is in the first byte of `v` equal to `b`
 * (bytes above a match may be flagged falsely; none below it). */
static inline uint64_t bytes_equal(uint64_t v, unsigned char b) {
  uint64_t x = v ^ (BYTES_01 * b);
  return (x - BYTES_01) & ~x & BYTES_80;
}

/* How many of the 8 bytes, in order, are ASCII digits before the first
 * that is not. */
static inline int leading_digits(uint64_t v) {
  uint64_t m = ((v + 0x4646464646464646ULL) | (v - 0x3030303030303030ULL)) & BYTES_80;
  return m ? __builtin_ctzll(m) >> 3 : 8;
}

/* The value of the first n (1 to 8) bytes of `v`, all digits. */
static inline uint64_t digits_value(uint64_t v, int n) {
  v -= 0x3030303030303030ULL;
  v <<= 8 * (8 - n); /* the bytes after the digits drop out; zeros lead */
  v = v * 10 + (v >> 8);
  v = ((v & 0x000000FF000000FFULL) * 0x000F424000000064ULL +
       ((v >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL) >> 32;
  return (uint32_t)v;
}

/* Read the digits at *pc, 8 at a time, onto *mant; advances *pc past
 * them and returns how many there were, or -1 if more than `room` (the
 * mantissa would overflow: the caller parses the field the slow way). */
static inline int read_digits(const char **pc, uint64_t *mant, int room) {
  static const uint64_t pow10i[] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                    10000000, 100000000};
  const char *c = *pc;
  int total = 0;
  for (;;) {
    uint64_t v = load8(c);
    int n = leading_digits(v);
    if (n == 0) break;
    total += n;
    if (total > room) return -1;
    *mant = *mant * pow10i[n] + digits_value(v, n);
    c += n;
    if (n < 8) break;
  }
  *pc = c;
  return total;
}

/* The next line's fields parsed as numbers in the same pass that finds
 * them (no second scan): for field i < max, ok[i] says whether it is a
 * number (the whole field, as parse_number reads it) and val[i] is it.
 * Returns how many fields the line has (0 for a blank line), or -1 at the
 * end of the file. */
static inline int csv_next_numbers(CsvReader *r, double *val, unsigned char *ok, int max) {
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
restart:;
  const char *c = r->buf + r->pos, *end = r->buf + r->len;
  if (c == end) {
    if (!csv_refill(r, r->pos) || r->len == 0) return -1;
    goto restart;
  }
  /* A blank line has no fields. */
  if (*c == '\n' || (*c == '\r' && c + 1 < end && c[1] == '\n')) {
    r->pos = (size_t)(c - r->buf) + (*c == '\n' ? 1 : 2);
    return 0;
  }
  if (*c == '\r' && c + 1 == end && !r->eof) {
    csv_refill(r, r->pos);
    goto restart;
  }
  int n = 0;
  for (;;) {
    /* One field: a number, or text up to the next delimiter. The sentinel
     * '\n' at `end` stops every scan, so none checks bounds. */
    const char *field = c;
    int good = 0, slow = 0;
    double v = 0;
    while (*c == ' ') c++;
    if (*c != '"') {
      int neg = 0;
      if (*c == '-' || *c == '+') neg = *c++ == '-';
      uint64_t mant = 0;
      int whole = read_digits(&c, &mant, 19), frac = 0;
      if (whole >= 0 && *c == '.') {
        c++;
        frac = read_digits(&c, &mant, 19 - whole);
      }
      if (whole < 0 || frac < 0) {
        slow = 1;
      } else {
        int any = whole + frac > 0, scale = -frac;
        if (any && (*c == 'e' || *c == 'E')) {
          c++;
          int eneg = 0, e = 0, edig = 0;
          if (*c == '-' || *c == '+') eneg = *c++ == '-';
          for (; (unsigned)(*c - '0') < 10; c++, edig = 1)
            if (e < 10000) e = e * 10 + (*c - '0');
          if (!edig) any = 0;
          scale += eneg ? -e : e;
        }
        while (*c == ' ') c++;
        if (any && (*c == ',' || *c == '\n' || *c == '\r')) {
          v = (double)mant;
          while (scale > 22) { v *= 1e22; scale -= 22; }
          while (scale < -22) { v /= 1e22; scale += 22; }
          v = scale >= 0 ? v * pow10[scale] : v / pow10[-scale];
          if (neg) v = -v;
          good = 1;
        }
      }
    }
    /* Whatever is left of the field (all of it, for text), a word at a
     * time: up to a comma or newline outside double quotes. */
    int quoted = 0;
    for (;;) {
      uint64_t w = load8(c);
      uint64_t m = bytes_equal(w, '"') | bytes_equal(w, '\n');
      if (!quoted) m |= bytes_equal(w, ',');
      if (!m) { c += 8; continue; }
      c += __builtin_ctzll(m) >> 3;
      if (*c == '"') { quoted = !quoted; c++; continue; }
      if (*c == ',' || c == end || !quoted) break;
      c++; /* a newline inside quotes */
    }
    if (c == end && !r->eof) {
      /* The line runs past what is read: read on, then parse it again. */
      csv_refill(r, r->pos);
      goto restart;
    }
    if (slow) {
      /* More than 19 digits: the scalar parser (it keeps the first 19). */
      const char *e = c;
      if (e > field && e[-1] == '\r' && *c == '\n') e--;
      good = parse_number(field, e, &v);
    }
    if (n < max) { val[n] = v; ok[n] = (unsigned char)good; }
    n++;
    if (c == end || *c == '\n') {
      r->pos = (size_t)(c - r->buf) + (c < end ? 1 : 0);
      return n;
    }
    c++; /* past the comma */
  }
}

/* Index of the header column named `name`, or fail. */
static inline int csv_column(const CsvReader *r, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < r->nfields; i++) {
    const char *s = r->field_start[i];
    size_t len = (size_t)(r->field_end[i] - s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') { s++; len -= 2; }
    if (len == n && memcmp(s, name, n) == 0) return i;
  }
  fail("no such column", name);
  return -1;
}

/* Print [s, end) as a JSON string. */
static inline void json_string(const char *s, const char *end) {
  if (end - s >= 2 && *s == '"' && end[-1] == '"') { s++; end--; }
  putchar('"');
  for (; s < end; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { putchar('\\'); putchar(c); }
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* Print a number as JSON (non-finite values become null). */
static inline void json_number(double v) {
  if (v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0) fputs("null", stdout);
  else printf("%.17g", v);
}

#endif
