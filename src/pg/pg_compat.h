/*
 * shape_router — the differences between the PostgreSQL majors the shell builds
 * against (15, 16, 17, 18), in one place.
 *
 * Each wrapper keeps the 15 meaning and maps it onto the API of the newer majors.
 * 15, 17 and 18 are built and tested (scripts/test.sh, scripts/chroot.sh); 16 is not
 * packaged where this project is tested, and its branches follow its documented API
 * (every change below that happened in 16 is guarded by PG_VERSION_NUM >= 160000).
 *
 * Included by shape_router_pg.h, after postgres.h.
 */
#ifndef SHAPE_ROUTER_PG_COMPAT_H
#define SHAPE_ROUTER_PG_COMPAT_H

#include "access/htup.h"
#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "nodes/primnodes.h"
#include "replication/reorderbuffer.h"
#include "replication/snapbuild.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/rel.h"

#if PG_VERSION_NUM < 150000
#error "shape_router needs PostgreSQL 15 or later"
#endif

/*
 * 16: SnapBuildGetOrBuildSnapshot() lost its xid argument (15 ignored it).
 */
static inline Snapshot
sr_snapbuild_snapshot(SnapBuild *builder, TransactionId xid)
{
#if PG_VERSION_NUM >= 160000
	(void) xid;
	return SnapBuildGetOrBuildSnapshot(builder);
#else
	return SnapBuildGetOrBuildSnapshot(builder, xid);
#endif
}

/*
 * 18: attcacheoff moved from pg_attribute's form to CompactAttribute. The
 * cached offset of column i (from 0) of desc in a tuple without NULLs, or -1.
 */
static inline int32
sr_attcacheoff(TupleDesc desc, int i)
{
#if PG_VERSION_NUM >= 180000
	return TupleDescCompactAttr(desc, i)->attcacheoff;
#else
	return TupleDescAttr(desc, i)->attcacheoff;
#endif
}

/*
 * 16: RelFileNode / rd_node / tp.relnode became RelFileLocator / rd_locator /
 * tp.rlocator. True when a decoded row change is on relation's storage.
 */
static inline bool
sr_change_on_relation(const ReorderBufferChange *change, Relation relation)
{
#if PG_VERSION_NUM >= 160000
	return RelFileLocatorEquals(change->data.tp.rlocator, relation->rd_locator);
#else
	return RelFileNodeEquals(change->data.tp.relnode, relation->rd_node);
#endif
}

/*
 * 17: ReorderBufferTupleBuf is gone; a change's tuples are plain HeapTuples.
 * Both return NULL when the change carries no such tuple.
 */
static inline HeapTuple
sr_change_new_tuple(ReorderBufferChange *change)
{
#if PG_VERSION_NUM >= 170000
	return change->data.tp.newtuple;
#else
	return change->data.tp.newtuple != NULL ? &change->data.tp.newtuple->tuple : NULL;
#endif
}

static inline HeapTuple
sr_change_old_tuple(ReorderBufferChange *change)
{
#if PG_VERSION_NUM >= 170000
	return change->data.tp.oldtuple;
#else
	return change->data.tp.oldtuple != NULL ? &change->data.tp.oldtuple->tuple : NULL;
#endif
}

/*
 * 16: pg_class_ownercheck() became object_ownercheck(RelationRelationId, ...).
 */
static inline bool
sr_relation_ownercheck(Oid relid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, roleid);
#else
	return pg_class_ownercheck(relid, roleid);
#endif
}

/*
 * 18: get_op_btree_interpretation() / OpBtreeInterpretation.strategy /
 * ROWCOMPARE_NE became get_op_index_interpretation() / OpIndexInterpretation.cmptype
 * / COMPARE_NE. sr_op_interpretations() lists an operator's interpretations in the
 * index opfamilies it belongs to, each an SrOpInterpretation whose comparison
 * SR_INTERP_CMP() gives as one of SR_CMP_*.
 */
#if PG_VERSION_NUM >= 180000
typedef OpIndexInterpretation SrOpInterpretation;
#define sr_op_interpretations(opno) get_op_index_interpretation(opno)
#define SR_INTERP_CMP(interp) ((int) (interp)->cmptype)
#define SR_CMP_LT	COMPARE_LT
#define SR_CMP_LE	COMPARE_LE
#define SR_CMP_EQ	COMPARE_EQ
#define SR_CMP_GE	COMPARE_GE
#define SR_CMP_GT	COMPARE_GT
#define SR_CMP_NE	COMPARE_NE
#else
typedef OpBtreeInterpretation SrOpInterpretation;
#define sr_op_interpretations(opno) get_op_btree_interpretation(opno)
#define SR_INTERP_CMP(interp) ((int) (interp)->strategy)
#define SR_CMP_LT	BTLessStrategyNumber
#define SR_CMP_LE	BTLessEqualStrategyNumber
#define SR_CMP_EQ	BTEqualStrategyNumber
#define SR_CMP_GE	BTGreaterEqualStrategyNumber
#define SR_CMP_GT	BTGreaterStrategyNumber
#define SR_CMP_NE	ROWCOMPARE_NE
#endif

/*
 * 18: lc_collate_is_c() is gone; the collation's locale says whether it sorts
 * bytewise. collid must be valid.
 */
static inline bool
sr_collation_is_c(Oid collid)
{
#if PG_VERSION_NUM >= 180000
	return pg_newlocale_from_collation(collid)->collate_is_c;
#else
	return lc_collate_is_c(collid);
#endif
}

#endif							/* SHAPE_ROUTER_PG_COMPAT_H */
