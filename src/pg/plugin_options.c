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
slot_wants_shape(PluginOptions *options, int64 shape_id)
{
	if (options->shape_subset != NULL &&
		!sr_shape_id_list_contains(options->shape_subset, options->shape_subset_count, (uint64) shape_id,
								   &options->shape_subset_cursor))
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

/* One option's value into options; errors (reject_option_value) when it is not valid. */
typedef void (*OptionParser) (DefElem *option, PluginOptions *options, size_t field);

static void
parse_bool_option(DefElem *option, PluginOptions *options, size_t field)
{
	bool	   *target = (bool *) ((char *) options + field);

	if (option->arg == NULL)
		*target = true;			/* "-o include-xids" alone means true */
	else if (!parse_bool(strVal(option->arg), target))
		reject_option_value(option, "a boolean");
}

static void
parse_format(DefElem *option, PluginOptions *options, size_t field)
{
	if (option->arg != NULL && strcmp(strVal(option->arg), "json") == 0)
		options->format = OUTPUT_FORMAT_JSON;
	else if (option->arg != NULL && strcmp(strVal(option->arg), "text") == 0)
		options->format = OUTPUT_FORMAT_TEXT;
	else
		reject_option_value(option, "\"json\" or \"text\"");
}

static void
parse_shapes(DefElem *option, PluginOptions *options, size_t field)
{
	uint64_t   *ids;
	size_t		count;
	size_t		bad_offset;
	sr_status	status;

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

static void
parse_shard(DefElem *option, PluginOptions *options, size_t field)
{
	if (option->arg == NULL ||
		sr_parse_shard(strVal(option->arg), &options->shard_index, &options->shard_count) != SR_OK)
		reject_option_value(option, psprintf("\"i/n\" with 1 <= n <= %d and 0 <= i < n", SR_SHARD_MAX_COUNT));
}

static void
parse_batch_bytes(DefElem *option, PluginOptions *options, size_t field)
{
	char	   *end;
	long long	value;

	if (option->arg == NULL)
		reject_option_value(option, psprintf("an integer from 0 to " INT64_FORMAT, MAX_BATCH_BYTES));
	errno = 0;
	value = strtoll(strVal(option->arg), &end, 10);
	if (errno != 0 || end == strVal(option->arg) || *end != '\0' || value < 0 || value > MAX_BATCH_BYTES)
		reject_option_value(option, psprintf("an integer from 0 to " INT64_FORMAT, MAX_BATCH_BYTES));
	options->batch_bytes = value;
}

/* The options, in the order the "unrecognized option" hint lists them. */
static const struct
{
	const char *name;
	OptionParser parse;
	size_t		field;			/* a boolean option's field in PluginOptions */
}			option_table[] =
{
	{"format", parse_format, 0},
	{"shapes", parse_shapes, 0},
	{"shard", parse_shard, 0},
	{"include-transaction", parse_bool_option, offsetof(PluginOptions, include_transaction)},
	{"include-xids", parse_bool_option, offsetof(PluginOptions, include_xids)},
	{"include-lsn", parse_bool_option, offsetof(PluginOptions, include_lsn)},
	{"include-timestamp", parse_bool_option, offsetof(PluginOptions, include_timestamp)},
	{"batch-bytes", parse_batch_bytes, 0},
};

/* "a, b and c": every option's name. */
static char *
option_names(void)
{
	StringInfoData names;

	initStringInfo(&names);
	for (int i = 0; i < lengthof(option_table); i++)
		appendStringInfo(&names, "%s%s", i == 0 ? "" : i + 1 == lengthof(option_table) ? " and " : ", ",
						 option_table[i].name);
	return names.data;
}

void
parse_options(List *raw_options, PluginOptions *options)
{
	bool		seen[lengthof(option_table)] = {0};
	ListCell   *lc;

	options->format = OUTPUT_FORMAT_JSON;
	options->include_transaction = true;
	options->include_xids = false;
	options->include_lsn = false;
	options->include_timestamp = false;
	options->batch_bytes = 0;
	options->shape_subset = NULL;
	options->shape_subset_count = 0;
	options->shape_subset_cursor = 0;
	options->shard_index = 0;
	options->shard_count = 1;

	foreach(lc, raw_options)
	{
		DefElem    *option = (DefElem *) lfirst(lc);
		int			i = 0;

		Assert(option->arg == NULL || IsA(option->arg, String));
		while (i < lengthof(option_table) && strcmp(option->defname, option_table[i].name) != 0)
			i++;
		if (i == lengthof(option_table))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized shape_router option \"%s\"", option->defname),
					 errhint("Valid options are %s.", option_names())));
		if (seen[i])
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("shape_router option \"%s\" specified more than once", option->defname)));
		seen[i] = true;
		option_table[i].parse(option, options, option_table[i].field);
	}
}
