/*
 * relation_cache.c — what decoding keeps per relation (RelationInfo) and per
 * partition (its ancestors, with how to convert its rows to their layouts),
 * and forgetting it, with the names of tables with shapes, on relcache
 * invalidation.
 */
#include "shape_router_pg.h"

#include "access/tupconvert.h"
#include "catalog/partition.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "plugin_internal.h"

/* Forgets what state caches about relid (InvalidOid: about every relation). */
void
invalidate_relations(RouterState *state, Oid relid)
{
	HASH_SEQ_STATUS status;
	RelationInfo *info;
	RelationName *name;
	PartitionInfo *partition;

	/* Any table may be the extension's catalog coming or going. */
	state->catalog_checked = false;
	if (OidIsValid(relid))
	{
		info = hash_search(state->relations, &relid, HASH_FIND, NULL);
		if (info != NULL)
			info->valid = false;
		name = hash_search(state->relation_names, &relid, HASH_FIND, NULL);
		if (name != NULL)
			name->stale = true;
	}
	else
	{
		hash_seq_init(&status, state->relations);
		while ((info = hash_seq_search(&status)) != NULL)
			info->valid = false;
		hash_seq_init(&status, state->relation_names);
		while ((name = hash_seq_search(&status)) != NULL)
			name->stale = true;
	}
	state->last_named_relid = InvalidOid;
	state->last_relation = NULL;
	/* A partition's routes depend on it and on each of its ancestors. */
	hash_seq_init(&status, state->partitions);
	while ((partition = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || partition->relid == relid)
			partition->valid = false;
		for (int i = 0; partition->valid && i < partition->ancestor_count; i++)
			if (partition->ancestors[i].relid == relid)
				partition->valid = false;
	}
}

void
relcache_invalidated(Datum arg, Oid relid)
{
	if (active_state == NULL || active_state->relations == NULL)
		return;
	invalidate_relations(active_state, relid);
}

static uint32 build_count = 0;

/* (Re)builds a relation's entry: its descriptor, column tags, record writing and replica identity. */
static void
relation_info_build(RelationInfo *info, Relation rel, MemoryContext parent)
{
	MemoryContext old;
	TupleDesc	desc;

	if (info->context == NULL)
		info->context = AllocSetContextCreate(parent, "shape_router relation", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(info->context);
	old = MemoryContextSwitchTo(info->context);

	desc = CreateTupleDescCopyConstr(RelationGetDescr(rel));	/* keeps fast defaults (attmissing) */
	info->desc = desc;
	record_relation_build(info, rel);
	info->identity_key = attnums_from_index_bitmap(RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY));
	info->identity_full = rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	info->tags = palloc(desc->natts + 1);
	relation_column_tags(desc, info->tags);
	info->generation = ++build_count;
	info->new_slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	info->old_slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	info->relid = RelationGetRelid(rel);
	/* (a child of info->context: the reset above deleted any built before) */
	info->expression_context = NULL;
	info->expressions_version = 0;
	info->expression_count = 0;
	info->expressions = NULL;
	info->valid = true;
	MemoryContextSwitchTo(old);
}

RelationInfo *
relation_info(RouterState *state, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	RelationInfo *info = state->last_relation;

	if (info == NULL || info->relid != relid)
	{
		info = hash_search(state->relations, &relid, HASH_ENTER, &found);
		if (!found)
		{
			info->context = NULL;
			info->valid = false;
		}
	}
	if (!info->valid || info->desc->natts != RelationGetDescr(rel)->natts)
		relation_info_build(info, rel, state->context);
	state->last_relation = info;
	return info;
}

/* The RelationInfo of a table known by OID (a partition's ancestor); NULL when gone. */
RelationInfo *
relation_info_by_id(RouterState *state, Oid relid)
{
	RelationInfo *info = hash_search(state->relations, &relid, HASH_FIND, NULL);
	Relation	rel;

	if (info != NULL && info->valid)
		return info;
	rel = RelationIdGetRelation(relid);
	if (!RelationIsValid(rel))
		return NULL;
	info = relation_info(state, rel);
	RelationClose(rel);
	return info;
}

/* The ancestors of a partition, with how to convert its rows to their layouts. */
PartitionInfo *
partition_info(RouterState *state, Relation partition)
{
	Oid			relid = RelationGetRelid(partition);
	bool		found;
	PartitionInfo *info = hash_search(state->partitions, &relid, HASH_ENTER, &found);
	List	   *ancestors;
	ListCell   *lc;
	MemoryContext old;
	TupleDesc	partition_desc;
	Bitmapset  *identity = NULL;
	Bitmapset  *offset_identity;
	int			member = -1;

	if (found && info->valid)
		return info;
	if (!found)
		info->context = AllocSetContextCreate(state->context, "shape_router partition", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(info->context);
	info->valid = false;
	info->ancestor_count = 0;
	old = MemoryContextSwitchTo(info->context);
	ancestors = get_partition_ancestors(relid);
	partition_desc = CreateTupleDescCopy(RelationGetDescr(partition));
	info->identity_full = partition->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	offset_identity = RelationGetIndexAttrBitmap(partition, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	while ((member = bms_next_member(offset_identity, member)) >= 0)
		identity = bms_add_member(identity, member + FirstLowInvalidHeapAttributeNumber);
	info->ancestors = palloc0(sizeof(AncestorRoute) * (list_length(ancestors) + 1));
	foreach(lc, ancestors)
	{
		Oid			ancestor_relid = lfirst_oid(lc);
		Relation	ancestor = RelationIdGetRelation(ancestor_relid);
		AncestorRoute *route;

		if (!RelationIsValid(ancestor))
			continue;
		route = &info->ancestors[info->ancestor_count++];
		route->relid = ancestor_relid;
		/* copies: the map must outlive relcache rebuilds of either side */
		route->map = convert_tuples_by_name(partition_desc, CreateTupleDescCopy(RelationGetDescr(ancestor)));
		for (int a = 1; a <= RelationGetDescr(ancestor)->natts; a++)
		{
			int			in_partition = route->map == NULL ? a : route->map->attrMap->attnums[a - 1];

			if (in_partition > 0 && bms_is_member(in_partition, identity))
				route->identity_key = bms_add_member(route->identity_key, a);
		}
		RelationClose(ancestor);
	}
	MemoryContextSwitchTo(old);
	info->valid = true;
	return info;
}
