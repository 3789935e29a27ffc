/* Test helper: hold an exclusive OFD write lock on the whole of FILE (as
 * the plugin does while it serves it) until killed.  Prints "locked" on
 * stdout once the lock is held, so that the test knows when to look.
 *
 * Usage: ofd-lock FILE
 */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Locks, says so, waits for the kill. */
int
main (int argc, char **argv)
{
  struct flock fl = {
    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0,
  };
  int fd;

  if (argc != 2) {
    fprintf (stderr, "usage: ofd-lock FILE\n");
    return EXIT_FAILURE;
  }
  fd = open (argv[1], O_RDWR | O_CLOEXEC);
  if (fd == -1) {
    perror (argv[1]);
    return EXIT_FAILURE;
  }
  if (fcntl (fd, F_OFD_SETLK, &fl) == -1) {
    perror ("F_OFD_SETLK");
    return EXIT_FAILURE;
  }
  printf ("locked\n");
  fflush (stdout);
  for (;;)
    pause ();
}
