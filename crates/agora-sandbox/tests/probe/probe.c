/* A hostile algorithm for the sandbox's tests: it tries to write, create and
 * delete files in the read-only dataset, to escape the mount, to read the
 * host's files, and to observe time, then prints what each attempt gave as
 * JSON (1 = the attempt succeeded). Also prints the first random bytes it
 * sees, so the tests can check they come from the job's seed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int opened(const char *path, int flags) {
  int fd = open(path, flags, 0644);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

int main(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned char rnd[8];
  getentropy(rnd, sizeof rnd);
  printf("{\"write_existing\":%d,\"create\":%d,\"unlink\":%d,\"escape\":%d,"
         "\"host_file\":%d,\"read\":%d,\"time\":%lld,\"random\":\"",
         opened("/data/data.csv", O_WRONLY), opened("/data/new.txt", O_WRONLY | O_CREAT),
         unlink("/data/data.csv") == 0, opened("/data/../../etc/passwd", O_RDONLY),
         opened("/etc/passwd", O_RDONLY), opened("/data/data.csv", O_RDONLY),
         (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  for (unsigned i = 0; i < sizeof rnd; i++) printf("%02x", rnd[i]);
  puts("\"}");
  return 0;
}
