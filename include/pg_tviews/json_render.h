/*-------------------------------------------------------------------------
 *
 * json_render.h
 *	  How pg_tviews renders column values as JSON.
 *
 * Shared by the decoder's "json" format (decoder/json_format.c) and the
 * engine's binary-to-JSON converter (engine/wire_json.c), so that the two
 * views of the same change are byte-for-byte identical -- which is what
 * the regression tests compare.
 *
 * Rules, by the column's base type: bool as true/false; int2, int4, int8,
 * oid, float4, float8 and numeric as JSON numbers written exactly as the
 * type's output function writes them, except NaN and the infinities,
 * which JSON cannot represent and which become strings; json and jsonb
 * embedded as JSON; bytea as the string "\\x<hex>"; everything else as
 * the JSON string of the type's text form.  Strings are escaped per
 * RFC 8259 and written in UTF-8.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TVIEWS_JSON_RENDER_H
#define PG_TVIEWS_JSON_RENDER_H

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"

typedef enum PgtvJsonKind
{
	PGTV_JSON_TEXT,				/* JSON string of the text form */
	PGTV_JSON_BOOL,				/* true / false */
	PGTV_JSON_INT2,				/* JSON number (decoder: fast path) */
	PGTV_JSON_INT4,
	PGTV_JSON_INT8,
	PGTV_JSON_OID,
	PGTV_JSON_NUMBER,			/* number, NaN/Infinity as strings */
	PGTV_JSON_JSON,				/* embedded JSON (json: line breaks become spaces) */
	PGTV_JSON_JSONB,			/* embedded JSON, as jsonb_out writes it */
	PGTV_JSON_BYTEA				/* "\\x..." */
} PgtvJsonKind;

/* How values of a type are rendered (looks up the base type). */
static inline PgtvJsonKind
pgtv_json_kind_for_type(Oid typid)
{
	switch (getBaseType(typid))
	{
		case BOOLOID:
			return PGTV_JSON_BOOL;
		case INT2OID:
			return PGTV_JSON_INT2;
		case INT4OID:
			return PGTV_JSON_INT4;
		case INT8OID:
			return PGTV_JSON_INT8;
		case OIDOID:
			return PGTV_JSON_OID;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return PGTV_JSON_NUMBER;
		case JSONOID:
			return PGTV_JSON_JSON;
		case JSONBOID:
			return PGTV_JSON_JSONB;
		case BYTEAOID:
			return PGTV_JSON_BYTEA;
		default:
			return PGTV_JSON_TEXT;
	}
}

/*
 * Append str[0..len) as the body of a JSON string (no quotes).  Runs of
 * bytes that need no escaping are copied in one go.  Input is in the
 * server encoding and converted to UTF-8 when that is neither UTF-8 nor
 * SQL_ASCII.
 */
static inline void
pgtv_json_escape(StringInfo buf, const char *str, int len)
{
	static const char hexdig[] = "0123456789abcdef";
	const char *p;
	const char *end;
	const char *run;
	int			enc = GetDatabaseEncoding();

	if (enc != PG_UTF8 && enc != PG_SQL_ASCII && len > 0)
	{
		str = pg_server_to_any(str, len, PG_UTF8);
		len = strlen(str);
	}

	p = str;
	end = str + len;
	run = p;
	while (p < end)
	{
		unsigned char c = (unsigned char) *p;

		if (likely(c >= 0x20 && c != '"' && c != '\\'))
		{
			p++;
			continue;
		}
		if (p > run)
			appendBinaryStringInfo(buf, run, p - run);
		switch (c)
		{
			case '"':
				appendBinaryStringInfo(buf, "\\\"", 2);
				break;
			case '\\':
				appendBinaryStringInfo(buf, "\\\\", 2);
				break;
			case '\b':
				appendBinaryStringInfo(buf, "\\b", 2);
				break;
			case '\f':
				appendBinaryStringInfo(buf, "\\f", 2);
				break;
			case '\n':
				appendBinaryStringInfo(buf, "\\n", 2);
				break;
			case '\r':
				appendBinaryStringInfo(buf, "\\r", 2);
				break;
			case '\t':
				appendBinaryStringInfo(buf, "\\t", 2);
				break;
			default:
				{
					char		u[6] = {'\\', 'u', '0', '0',
					hexdig[c >> 4], hexdig[c & 0xF]};

					appendBinaryStringInfo(buf, u, 6);
				}
		}
		p++;
		run = p;
	}
	if (p > run)
		appendBinaryStringInfo(buf, run, p - run);
}

/* Append a quoted JSON string. */
static inline void
pgtv_json_string(StringInfo buf, const char *str, int len)
{
	appendStringInfoCharMacro(buf, '"');
	pgtv_json_escape(buf, str, len);
	appendStringInfoCharMacro(buf, '"');
}

/*
 * Append a value given its type output function's text, per its kind.
 * (The decoder renders integers and bytea straight from the Datum, with
 * the same result; see json_format.c.)
 */
static inline void
pgtv_json_text_value(StringInfo buf, PgtvJsonKind kind, const char *s)
{
	switch (kind)
	{
		case PGTV_JSON_BOOL:
			appendStringInfoString(buf, s[0] == 't' ? "true" : "false");
			break;
		case PGTV_JSON_INT2:
		case PGTV_JSON_INT4:
		case PGTV_JSON_INT8:
		case PGTV_JSON_OID:
		case PGTV_JSON_JSONB:
			appendStringInfoString(buf, s);
			break;
		case PGTV_JSON_JSON:

			/*
			 * json keeps its input's whitespace.  Line breaks and tabs can
			 * only stand between tokens in valid JSON (inside strings they
			 * are escaped), so they become spaces: one message, one line.
			 */
			while (*s)
			{
				size_t		run = strcspn(s, "\n\r\t");

				appendBinaryStringInfo(buf, s, run);
				s += run;
				if (*s)
				{
					appendStringInfoCharMacro(buf, ' ');
					s++;
				}
			}
			break;
		case PGTV_JSON_NUMBER:
			/* JSON has no NaN or Infinity: those become strings */
			if (s[0] == 'N' || s[0] == 'I' || (s[0] == '-' && s[1] == 'I'))
				pgtv_json_string(buf, s, strlen(s));
			else
				appendStringInfoString(buf, s);
			break;
		case PGTV_JSON_BYTEA:
		case PGTV_JSON_TEXT:
			pgtv_json_string(buf, s, strlen(s));
			break;
	}
}

#endif							/* PG_TVIEWS_JSON_RENDER_H */
