/*
 * relation_cache.c — what decoding keeps per relation: one RelationInfo per
 * relation (its descriptor and column tags, how to write its rows, its
 * replica identity, its name, and for a partition its ancestors with how to
 * convert its rows to their layouts), in one hash, forgotten on relcache
 * invalidation by one callback.
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

	/* Any table may be the extension's catalog coming or going. */
	state->catalog_checked = false;
	state->last_named_relid = InvalidOid;
	state->last_relation = NULL;
	if (OidIsValid(relid) && state->partition_entries == 0)
	{
		info = hash_search(state->relations, &relid, HASH_FIND, NULL);
		if (info != NULL)
		{
			info->valid = false;
			info->name_stale = true;
		}
		return;
	}
	/* A partition's entry depends on each of its ancestors too. */
	hash_seq_init(&status, state->relations);
	while ((info = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || info->relid == relid)
		{
			info->valid = false;
			info->name_stale = true;
		}
		for (int i = 0; info->valid && i < info->ancestor_count; i++)
			if (info->ancestors[i].relid == relid)
				info->valid = false;
	}
}

void
relcache_invalidated(Datum arg, Oid relid)
{
	if (active_state == NULL || active_state->relations == NULL)
		return;
	invalidate_relations(active_state, relid);
}

/* relid's entry, made empty (not valid, no name) if there was none. */
RelationInfo *
relation_entry(RouterState *state, Oid relid)
{
	bool		found;
	RelationInfo *info = hash_search(state->relations, &relid, HASH_ENTER, &found);

	if (!found)
	{
		memset(info, 0, sizeof(RelationInfo));
		info->relid = relid;
	}
	return info;
}

/* Replaces the entry's name (allocated in the session's context, kept across rebuilds). */
static void
set_relation_name(RelationInfo *info, const char *text, MemoryContext parent)
{
	char	   *json;

	if (info->table_text != NULL && strcmp(info->table_text, text) == 0)
		return;
	json = json_string(text);
	if (info->table_text != NULL)
		pfree(info->table_text);
	if (info->table_json != NULL)
		pfree(info->table_json);
	info->table_text = MemoryContextStrdup(parent, text);
	info->table_json = MemoryContextStrdup(parent, json);
	info->table_json_len = strlen(json);
	pfree(json);
}

/*
 * Looks the entry's name up again when it may have changed (or was never
 * known): a table that is gone keeps the name it had.
 */
void
relation_name_refresh(RouterState *state, RelationInfo *info)
{
	char	   *json;
	char	   *text;

	if (info->table_text != NULL && !info->name_stale)
		return;
	info->name_stale = false;
	if (relation_qualified_names(info->relid, state->load_snapshot, state->change_context, &json, &text))
		set_relation_name(info, text, state->context);
}

/* A partition's ancestors, with how to convert its rows to their layouts (in the entry's context). */
static void
ancestors_build(RouterState *state, RelationInfo *info, Relation partition)
{
	List	   *ancestors = get_partition_ancestors(RelationGetRelid(partition));
	ListCell   *lc;

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
		route->map = convert_tuples_by_name(info->desc, CreateTupleDescCopy(RelationGetDescr(ancestor)));
		for (int a = 1; a <= RelationGetDescr(ancestor)->natts; a++)
		{
			int			in_partition = route->map == NULL ? a : route->map->attrMap->attnums[a - 1];

			if (in_partition > 0 && bms_is_member(in_partition, info->identity_key))
				route->identity_key = bms_add_member(route->identity_key, a);
		}
		RelationClose(ancestor);
	}
	if (info->ancestor_count > 0)
		state->partition_entries++;
}

static uint32 build_count = 0;

/*
 * (Re)builds a relation's entry: its descriptor, column tags, record writing,
 * replica identity, name, and a partition's ancestors.
 */
static void
relation_info_build(RouterState *state, RelationInfo *info, Relation rel)
{
	MemoryContext old;
	TupleDesc	desc;
	char	   *text;

	if (info->context == NULL)
		info->context = AllocSetContextCreate(state->context, "shape_router relation", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(info->context);
	if (info->ancestor_count > 0)
		state->partition_entries--;
	info->ancestor_count = 0;
	info->ancestors = NULL;
	old = MemoryContextSwitchTo(info->context);

	desc = CreateTupleDescCopyConstr(RelationGetDescr(rel));	/* keeps fast defaults (attmissing) */
	info->desc = desc;
	{
		/* record_relation_build names the table in this context: the name is kept apart */
		char	   *kept_text = info->table_text;
		char	   *kept_json = info->table_json;
		int			kept_json_len = info->table_json_len;

		record_relation_build(info, rel);
		text = info->table_text;
		info->table_text = kept_text;
		info->table_json = kept_json;
		info->table_json_len = kept_json_len;
		set_relation_name(info, text, state->context);
		info->name_stale = false;
	}
	info->identity_key = attnums_from_index_bitmap(RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY));
	info->identity_full = rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	info->tags = palloc(desc->natts + 1);
	relation_column_tags(desc, info->tags);
	info->generation = ++build_count;
	info->new_slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	info->old_slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	/* (a child of info->context: the reset above deleted any built before) */
	info->expression_context = NULL;
	info->expressions_version = 0;
	info->expressions_checked = 0;
	info->expression_count = 0;
	info->expressions = NULL;
	if (rel->rd_rel->relispartition)
		ancestors_build(state, info, rel);
	info->valid = true;
	MemoryContextSwitchTo(old);
}

RelationInfo *
relation_info_slow(RouterState *state, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	RelationInfo *info = state->last_relation;

	if (info == NULL || info->relid != relid)
		info = relation_entry(state, relid);
	if (!info->valid || info->desc->natts != RelationGetDescr(rel)->natts)
		relation_info_build(state, info, rel);
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
