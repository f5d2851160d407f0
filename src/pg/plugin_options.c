/*
 * plugin_options.c — the output plugin's options (format, shapes, shard,
 * include-transaction, include-xids, include-lsn, include-timestamp,
 * batch-bytes) and the shapes they select for a slot.
 */
#include "shape_router_pg.h"

#include "utils/builtins.h"
#include "utils/memutils.h"

#include "plugin_internal.h"

#define MAX_BATCH_BYTES ((int64) MaxAllocSize / 2)

/* Whether two option sets select the same shapes (the `shapes` list and the shard). */
bool
same_shape_selection(const PluginOptions *a, const PluginOptions *b)
{
	if (a->shard_index != b->shard_index || a->shard_count != b->shard_count)
		return false;
	if ((a->shape_subset == NULL) != (b->shape_subset == NULL))
		return false;
	return a->shape_subset == NULL ||
		(a->shape_subset_count == b->shape_subset_count &&
		 memcmp(a->shape_subset, b->shape_subset, sizeof(uint64) * a->shape_subset_count) == 0);
}

/* This slot's shapes: the `shapes` list (if any) and the shard (if any) agree. */
bool
slot_wants_shape(const PluginOptions *options, int64 shape_id)
{
	if (options->shape_subset != NULL &&
		!sr_shape_id_list_contains(options->shape_subset, options->shape_subset_count, (uint64) shape_id))
		return false;
	return options->shard_count <= 1 || sr_shard_of((uint64) shape_id, options->shard_count) == options->shard_index;
}

static void
reject_option_value(DefElem *option, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for shape_router option \"%s\": \"%s\"", option->defname,
					option->arg != NULL ? strVal(option->arg) : "(none)"),
			 errhint("Expected %s.", expected)));
}

static bool
bool_option(DefElem *option)
{
	bool		value;

	if (option->arg == NULL)
		return true;			/* "-o include-xids" alone means true */
	if (!parse_bool(strVal(option->arg), &value))
		reject_option_value(option, "a boolean");
	return value;
}

static void
mark_seen(DefElem *option, bool *seen)
{
	if (*seen)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("shape_router option \"%s\" specified more than once", option->defname)));
	*seen = true;
}

void
parse_options(List *raw_options, PluginOptions *options)
{
	bool		seen_format = false,
				seen_shapes = false,
				seen_shard = false,
				seen_transaction = false,
				seen_xids = false,
				seen_lsn = false,
				seen_timestamp = false,
				seen_batch = false;
	ListCell   *lc;

	options->format = OUTPUT_FORMAT_JSON;
	options->include_transaction = true;
	options->include_xids = false;
	options->include_lsn = false;
	options->include_timestamp = false;
	options->batch_bytes = 0;
	options->shape_subset = NULL;
	options->shape_subset_count = 0;
	options->shard_index = 0;
	options->shard_count = 1;

	foreach(lc, raw_options)
	{
		DefElem    *option = (DefElem *) lfirst(lc);

		Assert(option->arg == NULL || IsA(option->arg, String));
		if (strcmp(option->defname, "format") == 0)
		{
			mark_seen(option, &seen_format);
			if (option->arg != NULL && strcmp(strVal(option->arg), "json") == 0)
				options->format = OUTPUT_FORMAT_JSON;
			else if (option->arg != NULL && strcmp(strVal(option->arg), "text") == 0)
				options->format = OUTPUT_FORMAT_TEXT;
			else
				reject_option_value(option, "\"json\" or \"text\"");
		}
		else if (strcmp(option->defname, "shapes") == 0)
		{
			uint64_t   *ids;
			size_t		count;
			size_t		bad_offset;
			sr_status	status;

			mark_seen(option, &seen_shapes);
			if (option->arg == NULL)
				reject_option_value(option, "a comma-separated list of shape ids");
			status = sr_parse_shape_id_list(strVal(option->arg), &ids, &count, &bad_offset);
			if (status == SR_INVALID_ARGUMENT)
				reject_option_value(option, "a comma-separated list of positive shape ids");
			shape_router_check_status(status, "parse option \"shapes\"");
			options->shape_subset = palloc(sizeof(uint64) * (count + 1));
			memcpy(options->shape_subset, ids, sizeof(uint64) * count);
			options->shape_subset_count = count;
			free(ids);
		}
		else if (strcmp(option->defname, "shard") == 0)
		{
			mark_seen(option, &seen_shard);
			if (option->arg == NULL ||
				sr_parse_shard(strVal(option->arg), &options->shard_index, &options->shard_count) != SR_OK)
				reject_option_value(option, psprintf("\"i/n\" with 1 <= n <= %d and 0 <= i < n", SR_SHARD_MAX_COUNT));
		}
		else if (strcmp(option->defname, "include-transaction") == 0)
		{
			mark_seen(option, &seen_transaction);
			options->include_transaction = bool_option(option);
		}
		else if (strcmp(option->defname, "include-xids") == 0)
		{
			mark_seen(option, &seen_xids);
			options->include_xids = bool_option(option);
		}
		else if (strcmp(option->defname, "include-lsn") == 0)
		{
			mark_seen(option, &seen_lsn);
			options->include_lsn = bool_option(option);
		}
		else if (strcmp(option->defname, "include-timestamp") == 0)
		{
			mark_seen(option, &seen_timestamp);
			options->include_timestamp = bool_option(option);
		}
		else if (strcmp(option->defname, "batch-bytes") == 0)
		{
			char	   *end;
			long long	value;

			mark_seen(option, &seen_batch);
			if (option->arg == NULL)
				reject_option_value(option, psprintf("an integer from 0 to " INT64_FORMAT, MAX_BATCH_BYTES));
			errno = 0;
			value = strtoll(strVal(option->arg), &end, 10);
			if (errno != 0 || end == strVal(option->arg) || *end != '\0' ||
				value < 0 || value > MAX_BATCH_BYTES)
				reject_option_value(option, psprintf("an integer from 0 to " INT64_FORMAT, MAX_BATCH_BYTES));
			options->batch_bytes = value;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized shape_router option \"%s\"", option->defname),
					 errhint("Valid options are format, shapes, shard, include-transaction, include-xids, include-lsn, include-timestamp and batch-bytes.")));
	}
}
