/*
 * catalog_page_copy.c — a heap scan under a historic snapshot that reads the
 * pages as private copies, taken out of shared buffers a batch at a time by one
 * process_vm_readv.
 *
 * Why: a start reads the whole catalog (about 300 MB at a million shapes), and a
 * new backend pays for the first touch of every shared page it reads through its
 * own mapping. On a shadow-paged virtual machine (PVM, the test machines) that is
 * about 5 µs a 4 kB page, 0.4 s for such a catalog; the kernel's copy reads the
 * same pages through its own mapping, 0.07 s for 400 MB (bench/first_touch.c).
 * Elsewhere the copy costs a memcpy of the catalog against a minor fault per
 * sixteen pages: about even.
 *
 * Otherwise the scan is heapgetpage's: pinned and share-locked while copied, the
 * all-visible shortcut, HeapTupleSatisfiesVisibility on the rest. A historic
 * snapshot's check reads the tuple header and uses the buffer only for its tag
 * (combo command ids), so it runs on the copy with the buffer pinned but
 * unlocked; it never sets hint bits. Other snapshots are not accepted.
 */
#include "shape_router_pg.h"

#include <sys/uio.h>
#include <unistd.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "plugin_internal.h"

/* pages a syscall copies: 128 kB, a few microseconds of syscall for 16 pages */
#define COPY_BATCH 16

struct CopiedScan
{
	Relation	relation;
	Snapshot	snapshot;
	BufferAccessStrategy strategy;
	BlockNumber blocks;			/* the relation's size at the start */
	BlockNumber next_block;		/* the first block of the next batch */
	int			batch_count;	/* pages in the batch */
	int			page;			/* the page being read, in the batch */
	OffsetNumber offset;		/* the last line pointer read on it */
	Buffer		buffers[COPY_BATCH];	/* pinned until the batch is read */
	char	   *copies;			/* COPY_BATCH pages, each MAXALIGNed */
	HeapTupleData tuple;
};

CopiedScan *
copied_scan_begin(Relation relation, Snapshot snapshot)
{
	CopiedScan *scan = palloc0(sizeof(CopiedScan));

	/* another snapshot's check may set hint bits, which needs the buffer locked */
	if (snapshot->snapshot_type != SNAPSHOT_HISTORIC_MVCC)
		elog(ERROR, "shape_router copies catalog pages only under a historic snapshot");
	scan->relation = relation;
	scan->snapshot = snapshot;
	scan->blocks = RelationGetNumberOfBlocks(relation);
	/* as a heap scan chooses: a ring for relations over a quarter of shared buffers */
	if (scan->blocks > (BlockNumber) (NBuffers / 4))
		scan->strategy = GetAccessStrategy(BAS_BULKREAD);
	scan->copies = palloc(COPY_BATCH * BLCKSZ);
	scan->tuple.t_tableOid = RelationGetRelid(relation);
	return scan;
}

static void
release_batch(CopiedScan *scan)
{
	for (int i = 0; i < scan->batch_count; i++)
		ReleaseBuffer(scan->buffers[i]);
	scan->batch_count = 0;
}

/* The next batch of pages copied, or false at the end of the relation. */
static bool
copy_next_batch(CopiedScan *scan)
{
	struct iovec local[COPY_BATCH];
	struct iovec remote[COPY_BATCH];
	ssize_t		copied;
	int			count;

	release_batch(scan);
	if (scan->next_block >= scan->blocks)
		return false;
	count = (int) Min((BlockNumber) COPY_BATCH, scan->blocks - scan->next_block);
	/* ascending block order, as every reader and writer that locks several heap pages */
	for (int i = 0; i < count; i++)
	{
		scan->buffers[i] = ReadBufferExtended(scan->relation, MAIN_FORKNUM, scan->next_block + i,
											  RBM_NORMAL, scan->strategy);
		LockBuffer(scan->buffers[i], BUFFER_LOCK_SHARE);
		local[i].iov_base = scan->copies + (size_t) i * BLCKSZ;
		local[i].iov_len = BLCKSZ;
		remote[i].iov_base = BufferGetPage(scan->buffers[i]);
		remote[i].iov_len = BLCKSZ;
	}
	scan->batch_count = count;
	copied = process_vm_readv(getpid(), local, count, remote, count, 0);
	/* where the syscall is refused (seccomp) or stops short: the rest by memcpy */
	if (copied < 0)
		copied = 0;
	for (int i = (int) (copied / BLCKSZ); i < count; i++)
		memcpy(local[i].iov_base, remote[i].iov_base, BLCKSZ);
	for (int i = 0; i < count; i++)
		LockBuffer(scan->buffers[i], BUFFER_LOCK_UNLOCK);
	scan->next_block += count;
	scan->page = 0;
	scan->offset = InvalidOffsetNumber;
	return true;
}

/* The next tuple visible to the snapshot (a private copy, valid until the next call), or NULL. */
HeapTuple
copied_scan_next(CopiedScan *scan)
{
	for (;;)
	{
		Page		page;
		OffsetNumber last;
		bool		all_visible;

		if (scan->page >= scan->batch_count && !copy_next_batch(scan))
			return NULL;
		page = (Page) (scan->copies + (size_t) scan->page * BLCKSZ);
		last = PageGetMaxOffsetNumber(page);
		all_visible = PageIsAllVisible(page) && !scan->snapshot->takenDuringRecovery;
		while (scan->offset < last)
		{
			ItemId		item = PageGetItemId(page, ++scan->offset);
			HeapTuple	tuple = &scan->tuple;

			if (!ItemIdIsNormal(item))
				continue;
			tuple->t_data = (HeapTupleHeader) PageGetItem(page, item);
			tuple->t_len = ItemIdGetLength(item);
			ItemPointerSet(&tuple->t_self, scan->next_block - scan->batch_count + scan->page, scan->offset);
			if (all_visible || HeapTupleSatisfiesVisibility(tuple, scan->snapshot, scan->buffers[scan->page]))
				return tuple;
		}
		scan->page++;
		scan->offset = InvalidOffsetNumber;
	}
}

void
copied_scan_end(CopiedScan *scan)
{
	release_batch(scan);
	if (scan->strategy != NULL)
		FreeAccessStrategy(scan->strategy);
	pfree(scan->copies);
	pfree(scan);
}
