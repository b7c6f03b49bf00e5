/* json: a strict bounded JSON reader (see json.h). Recursive descent, at most DJSON_DEPTH_MAX frames
 * deep; strings are checked when parsed and decoded only when asked for, by the same code point
 * reader, so what is compared and what is returned are always the same decoding. */
#include "device/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What next_cp returns for a malformed sequence (code points are >= 0). */
#define CP_BAD_ESCAPE (-1)
#define CP_BAD_UTF8 (-2)
#define CP_CONTROL (-3)

struct parser {
	const uint8_t *p;
	size_t len, pos;
	struct djson_token *tok;
	size_t max, count;
	char *why;
	size_t why_size;
};

static enum herr refuse(struct parser *ps, enum herr rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum herr refuse(struct parser *ps, enum herr rc, const char *fmt, ...)
{
	va_list ap;

	if (ps->why && ps->why_size > 0) {
		va_start(ap, fmt);
		vsnprintf(ps->why, ps->why_size, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* --- code points ------------------------------------------------------------------------------ */

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The 4 hex digits of a \u escape at p[pos..pos+4), or -1. */
static int32_t hex4(const uint8_t *p, size_t end, size_t pos)
{
	int32_t v = 0;
	size_t i;
	int d;

	if (pos > end || end - pos < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		d = hex_digit(p[pos + i]);
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* A \uXXXX escape (with its pair if it is a high surrogate) at p[*pos] (the backslash). */
static int32_t escape_u(const uint8_t *p, size_t end, size_t *pos)
{
	int32_t hi = hex4(p, end, *pos + 2), lo;

	if (hi < 0 || (hi >= 0xdc00 && hi <= 0xdfff))
		return CP_BAD_ESCAPE;
	if (hi < 0xd800 || hi > 0xdbff) {
		*pos += 6;
		return hi;
	}
	if (end - *pos < 12 || p[*pos + 6] != '\\' || p[*pos + 7] != 'u')
		return CP_BAD_ESCAPE;
	lo = hex4(p, end, *pos + 8);
	if (lo < 0xdc00 || lo > 0xdfff)
		return CP_BAD_ESCAPE;
	*pos += 12;
	return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
}

/* The code point of the string text at p[*pos] (pos < end): an escape or one UTF-8 sequence, which
 * must end by end. Advances *pos past it; a CP_ value if it is malformed. A '"' is returned as
 * itself: the caller knows where its string ends. */
static int32_t next_cp(const uint8_t *p, size_t end, size_t *pos)
{
	size_t i = *pos, n, k;
	uint8_t b = p[i], lo = 0x80, hi = 0xbf;
	int32_t cp;

	if (b < 0x20)
		return CP_CONTROL;
	if (b == '\\') {
		if (end - i < 2)
			return CP_BAD_ESCAPE;
		switch (p[i + 1]) {
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u': return escape_u(p, end, pos);
		default: return CP_BAD_ESCAPE;
		}
		*pos += 2;
		return cp;
	}
	if (b < 0x80) {
		*pos += 1;
		return b;
	}
	/* Well-formed UTF-8 (Unicode 3.9, table 3-7): no overlongs, no surrogates, nothing past U+10FFFF. */
	if (b >= 0xc2 && b <= 0xdf) {
		n = 1;
		cp = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		n = 2;
		cp = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		n = 3;
		cp = b & 0x07;
		if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
	} else {
		return CP_BAD_UTF8;
	}
	if (end - i <= n)
		return CP_BAD_UTF8;
	for (k = 1; k <= n; k++) {
		b = p[i + k];
		if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf))
			return CP_BAD_UTF8;
		cp = cp << 6 | (b & 0x3f);
	}
	*pos += n + 1;
	return cp;
}

/* cp as UTF-8 into out; its length. */
static size_t utf8_put(int32_t cp, uint8_t out[4])
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* Whether two string tokens (already checked) decode to the same text. */
static int same_string(const uint8_t *p, const struct djson_token *a, const struct djson_token *b)
{
	size_t i = a->start, j = b->start;
	int32_t x, y;

	if (a->end - a->start == b->end - b->start && memcmp(p + a->start, p + b->start, a->end - a->start) == 0)
		return 1;
	while (i < a->end && j < b->end) {
		x = next_cp(p, a->end, &i);
		y = next_cp(p, b->end, &j);
		if (x < 0 || y < 0 || x != y)
			return 0;
	}
	return i == a->end && j == b->end;
}

/* --- the parser ------------------------------------------------------------------------------- */

static void skip_ws(struct parser *ps)
{
	while (ps->pos < ps->len && (ps->p[ps->pos] == ' ' || ps->p[ps->pos] == '\t' ||
				     ps->p[ps->pos] == '\n' || ps->p[ps->pos] == '\r'))
		ps->pos++;
}

static enum herr new_token(struct parser *ps, enum djson_type type, size_t start, size_t *idx)
{
	struct djson_token *t;

	if (ps->count >= ps->max)
		return refuse(ps, HERR_TOOBIG, "more than %zu values at byte %zu", ps->max, start);
	t = &ps->tok[ps->count];
	t->type = type;
	t->start = start;
	t->end = start;
	t->size = 0;
	*idx = ps->count++;
	t->next = ps->count;
	return HERR_OK;
}

static enum herr parse_value(struct parser *ps, unsigned depth);

/* At the opening quote. */
static enum herr parse_string(struct parser *ps, size_t *idx)
{
	size_t start = ps->pos + 1, at;
	enum herr rc;
	int32_t cp;

	if ((rc = new_token(ps, DJSON_STRING, start, idx)) != HERR_OK)
		return rc;
	ps->pos = start;
	while (ps->pos < ps->len) {
		if (ps->p[ps->pos] == '"') {
			ps->tok[*idx].end = ps->pos++;
			return HERR_OK;
		}
		at = ps->pos;
		cp = next_cp(ps->p, ps->len, &ps->pos);
		if (cp == CP_CONTROL)
			return refuse(ps, HERR_INVALID, "control byte in a string at byte %zu", at);
		if (cp == CP_BAD_ESCAPE)
			return refuse(ps, HERR_INVALID, "bad escape at byte %zu", at);
		if (cp < 0)
			return refuse(ps, HERR_INVALID, "invalid UTF-8 at byte %zu", at);
	}
	return refuse(ps, HERR_INVALID, "text ends inside a string");
}

static int is_digit(const struct parser *ps, size_t i)
{
	return i < ps->len && ps->p[i] >= '0' && ps->p[i] <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static enum herr parse_number(struct parser *ps, size_t *idx)
{
	size_t start = ps->pos, i = ps->pos;
	enum herr rc;

	if (i < ps->len && ps->p[i] == '-')
		i++;
	if (!is_digit(ps, i))
		return refuse(ps, HERR_INVALID, "bad number at byte %zu", start);
	if (ps->p[i] == '0' && is_digit(ps, i + 1))
		return refuse(ps, HERR_INVALID, "number with a leading zero at byte %zu", start);
	while (is_digit(ps, i))
		i++;
	if (i < ps->len && ps->p[i] == '.') {
		if (!is_digit(ps, ++i))
			return refuse(ps, HERR_INVALID, "bad fraction at byte %zu", start);
		while (is_digit(ps, i))
			i++;
	}
	if (i < ps->len && (ps->p[i] == 'e' || ps->p[i] == 'E')) {
		i++;
		if (i < ps->len && (ps->p[i] == '+' || ps->p[i] == '-'))
			i++;
		if (!is_digit(ps, i))
			return refuse(ps, HERR_INVALID, "bad exponent at byte %zu", start);
		while (is_digit(ps, i))
			i++;
	}
	if ((rc = new_token(ps, DJSON_NUMBER, start, idx)) != HERR_OK)
		return rc;
	ps->tok[*idx].end = i;
	ps->pos = i;
	return HERR_OK;
}

static enum herr parse_literal(struct parser *ps, const char *word, enum djson_type type, size_t *idx)
{
	size_t n = strlen(word);
	enum herr rc;

	if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, word, n) != 0)
		return refuse(ps, HERR_INVALID, "unexpected byte at byte %zu", ps->pos);
	if ((rc = new_token(ps, type, ps->pos, idx)) != HERR_OK)
		return rc;
	ps->pos += n;
	ps->tok[*idx].end = ps->pos;
	return HERR_OK;
}

/* After a member or an element: 1 at ',' (another follows), 0 at close; why otherwise. */
static enum herr after_item(struct parser *ps, char close, const char *in, int *more)
{
	skip_ws(ps);
	if (ps->pos >= ps->len)
		return refuse(ps, HERR_INVALID, "text ends inside %s", in);
	if (ps->p[ps->pos] != ',' && ps->p[ps->pos] != close)
		return refuse(ps, HERR_INVALID, "expected ',' or '%c' in %s at byte %zu", close, in, ps->pos);
	*more = ps->p[ps->pos++] == ',';
	return HERR_OK;
}

/* At '{'; depth counts it. */
static enum herr parse_object(struct parser *ps, unsigned depth, size_t obj)
{
	size_t key, k, m, at;
	enum herr rc;
	int more = 1;

	ps->pos++;
	skip_ws(ps);
	if (ps->pos < ps->len && ps->p[ps->pos] == '}') {
		ps->pos++;
		return HERR_OK;
	}
	while (more) {
		skip_ws(ps);
		at = ps->pos;
		if (at >= ps->len)
			return refuse(ps, HERR_INVALID, "text ends inside an object");
		if (ps->p[at] != '"')
			return refuse(ps, HERR_INVALID, "expected a key at byte %zu", at);
		if ((rc = parse_string(ps, &key)) != HERR_OK)
			return rc;
		/* Every earlier member is complete, so their next indexes lead from key to key. */
		for (k = obj + 1, m = 0; m < ps->tok[obj].size; m++, k = ps->tok[k + 1].next)
			if (same_string(ps->p, &ps->tok[k], &ps->tok[key]))
				return refuse(ps, HERR_INVALID, "duplicate key at byte %zu", at);
		skip_ws(ps);
		if (ps->pos >= ps->len || ps->p[ps->pos] != ':')
			return refuse(ps, HERR_INVALID, "expected ':' at byte %zu", ps->pos);
		ps->pos++;
		if ((rc = parse_value(ps, depth)) != HERR_OK)
			return rc;
		ps->tok[obj].size++;
		if ((rc = after_item(ps, '}', "an object", &more)) != HERR_OK)
			return rc;
	}
	return HERR_OK;
}

/* At '['; depth counts it. */
static enum herr parse_array(struct parser *ps, unsigned depth, size_t arr)
{
	enum herr rc;
	int more = 1;

	ps->pos++;
	skip_ws(ps);
	if (ps->pos < ps->len && ps->p[ps->pos] == ']') {
		ps->pos++;
		return HERR_OK;
	}
	while (more) {
		if ((rc = parse_value(ps, depth)) != HERR_OK)
			return rc;
		ps->tok[arr].size++;
		if ((rc = after_item(ps, ']', "an array", &more)) != HERR_OK)
			return rc;
	}
	return HERR_OK;
}

/* One value, after whitespace; depth containers are open around it. */
static enum herr parse_value(struct parser *ps, unsigned depth)
{
	size_t idx = 0;
	enum herr rc;
	uint8_t b;

	skip_ws(ps);
	if (ps->pos >= ps->len)
		return refuse(ps, HERR_INVALID, "text ends where a value should be");
	b = ps->p[ps->pos];
	switch (b) {
	case '{':
	case '[':
		if (depth >= DJSON_DEPTH_MAX)
			return refuse(ps, HERR_TOOBIG, "nested deeper than %d at byte %zu", DJSON_DEPTH_MAX, ps->pos);
		if ((rc = new_token(ps, b == '{' ? DJSON_OBJECT : DJSON_ARRAY, ps->pos, &idx)) != HERR_OK)
			return rc;
		rc = b == '{' ? parse_object(ps, depth + 1, idx) : parse_array(ps, depth + 1, idx);
		if (rc != HERR_OK)
			return rc;
		ps->tok[idx].end = ps->pos;
		ps->tok[idx].next = ps->count;
		return HERR_OK;
	case '"':
		return parse_string(ps, &idx);
	case 't':
		return parse_literal(ps, "true", DJSON_TRUE, &idx);
	case 'f':
		return parse_literal(ps, "false", DJSON_FALSE, &idx);
	case 'n':
		return parse_literal(ps, "null", DJSON_NULL, &idx);
	default:
		if (b == '-' || (b >= '0' && b <= '9'))
			return parse_number(ps, &idx);
		return refuse(ps, HERR_INVALID, "unexpected byte at byte %zu", ps->pos);
	}
}

enum herr djson_parse(const uint8_t *text, size_t len, struct djson_token *tok, size_t max,
		      struct djson_doc *doc, char *why, size_t why_size)
{
	struct parser ps = { text, len, 0, tok, max, 0, why, why_size };
	enum herr rc;

	memset(doc, 0, sizeof(*doc));
	if (why && why_size > 0)
		why[0] = '\0';
	if (!text || len == 0)
		return refuse(&ps, HERR_INVALID, "empty text");
	if (!tok)
		ps.max = 0;
	rc = parse_value(&ps, 0);
	if (rc != HERR_OK)
		return rc;
	skip_ws(&ps);
	if (ps.pos != len)
		return refuse(&ps, HERR_INVALID, "trailing bytes at byte %zu", ps.pos);
	doc->text = text;
	doc->len = len;
	doc->tok = tok;
	doc->count = ps.count;
	return HERR_OK;
}

/* --- reading a parsed document ---------------------------------------------------------------- */

static const struct djson_token *token(const struct djson_doc *doc, size_t i, enum djson_type type)
{
	if (!doc || !doc->tok || i >= doc->count || doc->tok[i].type != type)
		return NULL;
	return &doc->tok[i];
}

int djson_string_is(const struct djson_doc *doc, size_t i, const char *s)
{
	const struct djson_token *t = token(doc, i, DJSON_STRING);
	size_t pos, k = 0, n, slen;
	uint8_t u[4];
	int32_t cp;

	if (!t || !s)
		return 0;
	slen = strlen(s);
	for (pos = t->start; pos < t->end;) {
		cp = next_cp(doc->text, t->end, &pos);
		if (cp < 0)
			return 0;
		n = utf8_put(cp, u);
		if (slen - k < n || memcmp(s + k, u, n) != 0)
			return 0;
		k += n;
	}
	return k == slen;
}

enum herr djson_find(const struct djson_doc *doc, size_t obj, const char *key, size_t *val)
{
	const struct djson_token *t = token(doc, obj, DJSON_OBJECT);
	size_t k, m;

	if (!t || !key)
		return HERR_INVALID;
	for (k = obj + 1, m = 0; m < t->size; m++, k = doc->tok[k + 1].next) {
		if (djson_string_is(doc, k, key)) {
			*val = k + 1;
			return HERR_OK;
		}
	}
	return HERR_NOTFOUND;
}

enum herr djson_string(const struct djson_doc *doc, size_t i, char *buf, size_t size, size_t *len)
{
	const struct djson_token *t = token(doc, i, DJSON_STRING);
	size_t pos, n = 0, k;
	uint8_t u[4];
	int32_t cp;

	if (len)
		*len = 0;
	if (size > 0)
		buf[0] = '\0';
	if (!t)
		return HERR_INVALID;
	for (pos = t->start; pos < t->end;) {
		cp = next_cp(doc->text, t->end, &pos);
		if (cp <= 0) {
			if (size > 0)
				buf[0] = '\0';
			return HERR_INVALID;
		}
		k = utf8_put(cp, u);
		if (size == 0 || size - 1 - n < k) {
			if (size > 0)
				buf[0] = '\0';
			return HERR_TOOBIG;
		}
		memcpy(buf + n, u, k);
		n += k;
	}
	if (size == 0)
		return HERR_TOOBIG;
	buf[n] = '\0';
	if (len)
		*len = n;
	return HERR_OK;
}

enum herr djson_int64(const struct djson_doc *doc, size_t i, int64_t *v)
{
	const struct djson_token *t = token(doc, i, DJSON_NUMBER);
	const uint64_t limit = (uint64_t)INT64_MAX;
	uint64_t mag = 0, max;
	size_t pos;
	int neg;

	if (!t)
		return HERR_INVALID;
	pos = t->start;
	neg = doc->text[pos] == '-';
	if (neg)
		pos++;
	max = neg ? limit + 1 : limit;
	if (pos == t->end)
		return HERR_INVALID;
	for (; pos < t->end; pos++) {
		uint8_t c = doc->text[pos];

		if (c < '0' || c > '9')
			return HERR_INVALID; /* a fraction or an exponent */
		if (mag > (max - (c - '0')) / 10)
			return HERR_TOOBIG;
		mag = mag * 10 + (c - '0');
	}
	/* -2^63 has no positive int64_t; go through its successor. */
	*v = neg ? (mag == limit + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
	return HERR_OK;
}

enum herr djson_bool(const struct djson_doc *doc, size_t i, int *v)
{
	if (token(doc, i, DJSON_TRUE)) {
		*v = 1;
		return HERR_OK;
	}
	if (token(doc, i, DJSON_FALSE)) {
		*v = 0;
		return HERR_OK;
	}
	return HERR_INVALID;
}

void djson_iter_init(const struct djson_doc *doc, size_t arr, struct djson_iter *it)
{
	const struct djson_token *t = token(doc, arr, DJSON_ARRAY);

	it->next = arr + 1;
	it->left = t ? t->size : 0;
}

int djson_iter_next(const struct djson_doc *doc, struct djson_iter *it, size_t *elem)
{
	if (it->left == 0 || it->next >= doc->count)
		return 0;
	*elem = it->next;
	it->next = doc->tok[it->next].next;
	it->left--;
	return 1;
}
