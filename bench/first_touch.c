/*
 * What a process's first touch of memory costs on this machine, in CPU time:
 * fresh private pages (as a load's tables), with and without transparent huge
 * pages, and shared pages another process already wrote (as a backend's first
 * look at shared buffers), with and without MADV_POPULATE_READ first, and
 * copied by process_vm_readv 16 pages of 8 KB a call into one reused buffer (as
 * the plugin's whole-catalog read, src/pg/catalog_page_copy.c).
 *
 *   cc -O2 -o /tmp/first_touch bench/first_touch.c && /tmp/first_touch 400
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static double
cpu_seconds(void)
{
	struct rusage r;

	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static void
report(const char *what, double seconds, size_t bytes)
{
	printf("%-52s %6.3f s CPU, %5.2f us per 4 KB\n", what, seconds, seconds * 1e6 / (bytes / 4096));
}

/* Touches a fresh private mapping once per 4 KB, advised for huge pages or not. */
static void
private_pages(size_t bytes, int huge)
{
	double		start = cpu_seconds();
	char	   *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(1);
	if (huge)
		madvise(p, bytes, MADV_HUGEPAGE);
	for (size_t i = 0; i < bytes; i += 4096)
		p[i] = 1;
	report(huge ? "private, first touch, MADV_HUGEPAGE" : "private, first touch, 4 KB pages", cpu_seconds() - start, bytes);
	start = cpu_seconds();
	for (size_t i = 0; i < bytes; i += 4096)
		p[i] = 2;
	report(huge ? "private, second touch, MADV_HUGEPAGE" : "private, second touch, 4 KB pages", cpu_seconds() - start, bytes);
	munmap(p, bytes);
}

/* A child's first read of shared pages its parent wrote: in place, or copied out. */
enum shared_read { IN_PLACE, POPULATED, COPIED };

static void
shared_pages(size_t bytes, enum shared_read how)
{
	static const char *const names[] = {
		"shared, written by another process",
		"shared, written by another process, populated first",
		"shared, written by another process, copied out",
	};
	char	   *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(1);
	memset(p, 1, bytes);
	fflush(stdout);
	if (fork() == 0)
	{
		double		start = cpu_seconds();
		volatile long sum = 0;

		if (how == POPULATED && madvise(p, bytes, MADV_POPULATE_READ) != 0)
			perror("madvise(MADV_POPULATE_READ)");
		if (how == COPIED)
		{
			enum { BATCH = 16, PAGE = 8192 };
			static char copy[BATCH * PAGE];

			memset(copy, 0, sizeof(copy));
			start = cpu_seconds();
			for (size_t at = 0; at + sizeof(copy) <= bytes; at += sizeof(copy))
			{
				struct iovec local[BATCH], remote[BATCH];

				for (int i = 0; i < BATCH; i++)
				{
					local[i] = (struct iovec) {copy + i * PAGE, PAGE};
					remote[i] = (struct iovec) {p + at + i * PAGE, PAGE};
				}
				if (process_vm_readv(getpid(), local, BATCH, remote, BATCH, 0) != (ssize_t) sizeof(copy))
				{
					perror("process_vm_readv");
					_exit(1);
				}
				for (size_t i = 0; i < sizeof(copy); i += 4096)
					sum += copy[i];
			}
		}
		else
			for (size_t i = 0; i < bytes; i += 4096)
				sum += p[i];
		report(names[how], cpu_seconds() - start, bytes);
		fflush(stdout);
		_exit(0);
	}
	wait(NULL);
	munmap(p, bytes);
}

int
main(int argc, char **argv)
{
	size_t		bytes = (size_t) (argc > 1 ? atoi(argv[1]) : 400) << 20;

	printf("%zu MB\n", bytes >> 20);
	private_pages(bytes, 0);
	private_pages(bytes, 1);
	shared_pages(bytes, IN_PLACE);
	shared_pages(bytes, POPULATED);
	shared_pages(bytes, COPIED);
	return 0;
}
