/*-------------------------------------------------------------------------
 *
 * options.c
 *	  Parsing and validation of pg_tviews_decoder's output plugin options.
 *
 * Options arrive as a list of DefElem (from START_REPLICATION ... (opt
 * 'value'), pg_recvlogical -o, or the options array of
 * pg_logical_slot_get_changes()).  Every option is checked here, once, at
 * startup: an unknown option or a malformed value is an ERROR with
 * ERRCODE_INVALID_PARAMETER_VALUE and a hint naming what is valid, so that
 * a typo never silently changes what a consumer receives.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "decoder.h"
#include "pg_tviews/wire.h"

#include "nodes/value.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

typedef enum OptionType
{
	OPT_BOOL,
	OPT_FORMAT,
	OPT_INT,
	OPT_TABLES,
	OPT_ACTIONS,
	OPT_PREFIXES,
	OPT_COLUMNS,
	OPT_LINEAGE
} OptionType;

typedef struct OptionDef
{
	const char *name;
	OptionType	type;
	size_t		offset;			/* of the field in DecoderOptions */
} OptionDef;

#define OPT(name, type, field) {name, type, offsetof(DecoderOptions, field)}

static const OptionDef option_defs[] = {
	OPT("format", OPT_FORMAT, format),
	OPT("binary-version", OPT_INT, binary_version),
	OPT("include-tables", OPT_TABLES, include_tables),
	OPT("exclude-tables", OPT_TABLES, exclude_tables),
	OPT("actions", OPT_ACTIONS, actions),
	OPT("message-prefixes", OPT_PREFIXES, message_prefixes),
	OPT("only-local", OPT_BOOL, only_local),
	OPT("columns", OPT_COLUMNS, key_columns_only),
	OPT("lineage-columns", OPT_LINEAGE, lineage_columns),
	OPT("tracked", OPT_BOOL, tracked),
	OPT("skip-empty-xacts", OPT_BOOL, skip_empty_xacts),
	OPT("include-xids", OPT_BOOL, include_xids),
	OPT("include-timestamp", OPT_BOOL, include_timestamp),
	OPT("include-lsn", OPT_BOOL, include_lsn),
	OPT("include-types", OPT_BOOL, include_types),
	OPT("stream-changes", OPT_BOOL, stream_changes),
};

static const char *const action_names[] = {
	"insert", "update", "delete", "truncate", "message"
};

/*
 * The hint for an unknown option: the list of every valid option name.
 */
static char *
valid_option_list(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (size_t i = 0; i < lengthof(option_defs); i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", option_defs[i].name);
	return buf.data;
}

static void
bad_value(const char *option, const char *value, const char *detail,
		  const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value \"%s\" for pg_tviews_decoder option \"%s\"",
					value, option),
			 detail ? errdetail_internal("%s", detail) : 0,
			 errhint("%s", hint)));
}

/*
 * Split a comma-separated list, honouring backslash escapes: "\," is a
 * literal comma, "\\" a backslash.  With keep_escapes, backslashes before
 * other characters are kept, so that the pattern parser below can tell
 * "\." and "\*" from the unescaped separator and wildcard.
 * Surrounding blanks of each element are trimmed.  Empty input gives NIL.
 */
static List *
split_escaped_list(const char *value, bool keep_escapes)
{
	List	   *result = NIL;
	StringInfoData cur;
	const char *p = value;

	initStringInfo(&cur);
	for (;;)
	{
		if (*p == '\\' && p[1] != '\0')
		{
			if (keep_escapes && p[1] != ',')
				appendStringInfoChar(&cur, '\\');
			appendStringInfoChar(&cur, p[1]);
			p += 2;
			continue;
		}
		if (*p == ',' || *p == '\0')
		{
			char	   *s = cur.data;
			int			len = cur.len;

			while (len > 0 && isspace((unsigned char) s[len - 1]))
				len--;
			s[len] = '\0';
			while (isspace((unsigned char) *s))
				s++;
			if (*s != '\0' || *p == ',')
				result = lappend(result, pstrdup(s));
			resetStringInfo(&cur);
			if (*p == '\0')
				break;
			p++;
			continue;
		}
		appendStringInfoChar(&cur, *p);
		p++;
	}
	return result;
}

/*
 * Parse one "schema.table" (nparts = 2) or "schema.table.column"
 * (nparts = 3) pattern.  Unescaped dots separate the parts; "\." is a
 * literal dot, "\*" a literal star and "\\" a backslash.  Unescaped '*'
 * stays as the wildcard, stored as the byte 0x01 so that it cannot
 * collide with a literal star.
 */
#define WILDCARD_BYTE '\001'

static TablePattern *
parse_table_pattern(const char *option, const char *item, int nparts)
{
	TablePattern *pat = palloc0(sizeof(TablePattern));
	char	   *parts[3] = {NULL, NULL, NULL};
	int			n = 0;
	StringInfoData part;

	initStringInfo(&part);
	for (const char *p = item;; p++)
	{
		if (*p == '\\' && p[1] != '\0')
		{
			p++;
			appendStringInfoChar(&part, *p);
		}
		else if (*p == '*')
			appendStringInfoChar(&part, WILDCARD_BYTE);
		else if (*p == '.' && n >= nparts - 1)
		{
			n = -1;				/* an unescaped dot too many */
			break;
		}
		else if (*p == '.' || *p == '\0')
		{
			if (part.len == 0)
				break;			/* empty part: reported below */
			parts[n++] = pstrdup(part.data);
			resetStringInfo(&part);
			if (*p == '\0')
				break;
		}
		else
			appendStringInfoChar(&part, *p);
	}
	if (n != nparts)
	{
		/* the detail below covers a missing part and a dot too many */
		if (nparts == 2)
			bad_value(option, item,
					  "Each element must be a schema-qualified table name or pattern.",
					  "Write schema.table, with * as a wildcard (e.g. public.*, *.tb_*); escape a literal dot, comma or star with a backslash.");
		else
			bad_value(option, item,
					  "Each element must be a schema-qualified column name or pattern.",
					  "Write schema.table.column, with * as a wildcard (e.g. public.tb_*.fk_*); escape a literal dot, comma or star with a backslash.");
	}
	pat->schema = parts[0];
	pat->table = parts[1];
	pat->column = parts[2];
	return pat;
}

/*
 * Match a name against a pattern whose wildcard is WILDCARD_BYTE.
 * Iterative with single backtracking point, linear in practice.
 */
static bool
wildcard_match(const char *pat, const char *str)
{
	const char *star = NULL;
	const char *resume = NULL;

	while (*str)
	{
		if (*pat == WILDCARD_BYTE)
		{
			star = pat++;
			resume = str;
		}
		else if (*pat == *str)
		{
			pat++;
			str++;
		}
		else if (star)
		{
			pat = star + 1;
			str = ++resume;
		}
		else
			return false;
	}
	while (*pat == WILDCARD_BYTE)
		pat++;
	return *pat == '\0';
}

/* column is NULL for table patterns */
static bool
any_pattern_matches(List *patterns, const char *schema, const char *table,
					const char *column)
{
	ListCell   *lc;

	foreach(lc, patterns)
	{
		TablePattern *pat = lfirst(lc);

		if (wildcard_match(pat->schema, schema) &&
			wildcard_match(pat->table, table) &&
			(column == NULL || wildcard_match(pat->column, column)))
			return true;
	}
	return false;
}

/*
 * Does a table pass the include-tables / exclude-tables filters?
 * Exclusion wins over inclusion.
 */
bool
decoder_table_matches(const DecoderOptions *opts, const char *schema,
					  const char *table)
{
	if (opts->include_tables != NIL &&
		!any_pattern_matches(opts->include_tables, schema, table, NULL))
		return false;
	if (any_pattern_matches(opts->exclude_tables, schema, table, NULL))
		return false;
	return true;
}

/*
 * Is a column named by lineage-columns?  Such columns travel with the key
 * under columns=key, since the engine maps changes to TVIEW rows by them.
 */
bool
decoder_column_is_lineage(const DecoderOptions *opts, const char *schema,
						  const char *table, const char *column)
{
	return any_pattern_matches(opts->lineage_columns, schema, table, column);
}

/*
 * Does a logical message's prefix pass message-prefixes?  The option lists
 * exact prefixes (the string given to pg_logical_emit_message()).
 */
bool
decoder_prefix_matches(const DecoderOptions *opts, const char *prefix)
{
	ListCell   *lc;

	if (opts->message_prefixes == NIL)
		return true;
	foreach(lc, opts->message_prefixes)
	{
		if (strcmp((char *) lfirst(lc), prefix) == 0)
			return true;
	}
	return false;
}

static int
parse_actions(const char *option, const char *value)
{
	List	   *items = split_escaped_list(value, false);
	ListCell   *lc;
	int			actions = 0;

	if (items == NIL)
		bad_value(option, value, "At least one action is required.",
				  "Valid actions are: insert, update, delete, truncate, message.");
	foreach(lc, items)
	{
		const char *item = lfirst(lc);
		size_t		i;

		for (i = 0; i < lengthof(action_names); i++)
		{
			if (pg_strcasecmp(item, action_names[i]) == 0)
				break;
		}
		if (i == lengthof(action_names))
			bad_value(option, item, NULL,
					  "Valid actions are: insert, update, delete, truncate, message.");
		actions |= (1 << i);
	}
	return actions;
}

/*
 * Fill *opts from the option list; defaults first.
 */
void
decoder_parse_options(List *options, DecoderOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(DecoderOptions));
	opts->format = DECODER_FORMAT_JSON;
	opts->binary_version = PGTV_WIRE_VERSION;
	opts->actions = DECODER_ACTION_ALL;
	opts->skip_empty_xacts = true;
	opts->include_xids = true;
	opts->include_timestamp = true;
	opts->include_lsn = true;
	opts->include_types = true;

	foreach(lc, options)
	{
		DefElem    *elem = lfirst(lc);
		const OptionDef *def = NULL;
		const char *value;
		char	   *field;

		for (size_t i = 0; i < lengthof(option_defs); i++)
		{
			if (strcmp(elem->defname, option_defs[i].name) == 0)
			{
				def = &option_defs[i];
				break;
			}
		}
		if (def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized pg_tviews_decoder option \"%s\"",
							elem->defname),
					 errhint("Valid options are: %s.", valid_option_list())));

		field = (char *) opts + def->offset;
		value = elem->arg ? strVal(elem->arg) : NULL;

		/* A bare boolean option means true; everything else needs a value. */
		if (value == NULL && def->type != OPT_BOOL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pg_tviews_decoder option \"%s\" requires a value",
							def->name),
					 errhint("Only boolean options may be given without a value; see docs/decoder.md for the values of \"%s\".",
							 def->name)));

		switch (def->type)
		{
			case OPT_BOOL:
				if (value == NULL)
					*(bool *) field = true;
				else if (!parse_bool(value, (bool *) field))
					bad_value(def->name, value, NULL,
							  "Valid values are: true, false, on, off, 1, 0.");
				break;
			case OPT_FORMAT:
				if (strcmp(value, "json") == 0)
					opts->format = DECODER_FORMAT_JSON;
				else if (strcmp(value, "binary") == 0)
					opts->format = DECODER_FORMAT_BINARY;
				else
					bad_value(def->name, value, NULL,
							  "Valid values are: json, binary.");
				break;
			case OPT_INT:
				{
					long		v;
					char	   *end;

					errno = 0;
					v = strtol(value, &end, 10);
					/* digits only: no sign, no blanks, no overflow */
					if (errno != 0 || *end != '\0' || end == value ||
						strspn(value, "0123456789") != strlen(value) ||
						v != PGTV_WIRE_VERSION)
						bad_value(def->name, value, NULL,
								  psprintf("This build of pg_tviews_decoder writes binary version %d only.",
										   PGTV_WIRE_VERSION));
					*(int *) field = (int) v;
					break;
				}
			case OPT_TABLES:
			case OPT_LINEAGE:
				{
					List	   *pats = NIL;
					ListCell   *lc2;

					if (split_escaped_list(value, true) == NIL)
						bad_value(def->name, value,
								  "At least one pattern is required.",
								  "Omit the option to select every table.");
					foreach(lc2, split_escaped_list(value, true))
						pats = lappend(pats,
									   parse_table_pattern(def->name, lfirst(lc2),
														   def->type == OPT_LINEAGE ? 3 : 2));
					*(List **) field = pats;
					break;
				}
			case OPT_ACTIONS:
				opts->actions = parse_actions(def->name, value);
				break;
			case OPT_PREFIXES:
				{
					List	   *items = split_escaped_list(value, false);

					if (items == NIL)
						bad_value(def->name, value,
								  "At least one prefix is required.",
								  "Give a comma-separated list of message prefixes, or omit the option to receive all messages; exclude messages with actions.");
					opts->message_prefixes = items;
					break;
				}
			case OPT_COLUMNS:
				if (strcmp(value, "all") == 0)
					opts->key_columns_only = false;
				else if (strcmp(value, "key") == 0)
					opts->key_columns_only = true;
				else
					bad_value(def->name, value, NULL,
							  "Valid values are: all, key.");
				break;
		}
	}
}
