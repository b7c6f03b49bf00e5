#include "server/sensitive.h"

#include <stdint.h>
#include <string.h>

/* A name is read as words ("tokens"): ASCII letters and digits, split at every other ASCII byte and
 * at camelCase humps. Bytes >= 0x80 are dropped and split nothing, so invisible characters (U+200B,
 * a soft hyphen) put inside a name to dodge the catalogue vanish: "mo\u200Btion" reads "motion".
 * Only the first SENSITIVE_NAME_MAX - 1 letters and digits are looked at. */
struct reading {
	char s[SENSITIVE_NAME_MAX];               /* all letters and digits, lower case */
	unsigned char word[SENSITIVE_NAME_MAX];   /* 1 where a token starts in s */
	size_t slen;
	size_t nlen;                              /* s[0..nlen) is the name with suffixes stripped */
	enum sensitive_family unit;               /* what a stripped unit says, if anything */
};

/* Unit and qualifier suffixes. One is stripped from the end while something remains before it.
 * A short or ambiguous one (`glued` 0) goes only as a whole last token ("load_w", "LoadW"), so that
 * "flow", "data", "draw", "mongodb" or "influx" keep their ends; a distinctive one goes wherever
 * the letters end with it ("co2ppm", "motiondetected"), which keeps normalising a normalised name
 * a no-op. A unit that only a presence-revealing quantity is measured in names a family, used
 * when no word of the name does. */
static const struct suffix {
	const char *text;
	int glued;
	enum sensitive_family family;
} suffixes[] = {
	{ "ppm", 1, SENSITIVE_AIR_QUALITY }, { "ppb", 1, SENSITIVE_AIR_QUALITY },
	{ "db", 0, SENSITIVE_SOUND }, { "dba", 1, SENSITIVE_SOUND },
	{ "dbfs", 1, SENSITIVE_SOUND }, { "dbspl", 1, SENSITIVE_SOUND },
	{ "dbm", 1, SENSITIVE_RADIO },
	{ "lux", 0, SENSITIVE_LIGHT }, { "lx", 0, SENSITIVE_LIGHT },
	{ "w", 0, SENSITIVE_POWER }, { "kw", 0, SENSITIVE_POWER }, { "mw", 0, SENSITIVE_POWER },
	{ "wh", 0, SENSITIVE_POWER }, { "kwh", 1, SENSITIVE_POWER },
	/* Amperes and volts name no family: "temp_a" is probe A, "battery_v" a battery. Electrical
	 * current is caught by its words ("current", "amps") instead. */
	{ "a", 0, SENSITIVE_NONE }, { "ma", 0, SENSITIVE_NONE }, { "v", 0, SENSITIVE_NONE },
	{ "pct", 1, SENSITIVE_NONE }, { "percent", 1, SENSITIVE_NONE },
	{ "level", 1, SENSITIVE_NONE }, { "value", 1, SENSITIVE_NONE }, { "index", 1, SENSITIVE_NONE },
	{ "status", 1, SENSITIVE_NONE }, { "detected", 1, SENSITIVE_NONE },
	{ "sensor", 1, SENSITIVE_NONE },
	{ "raw", 0, SENSITIVE_NONE }, { "state", 0, SENSITIVE_NONE }, { "count", 0, SENSITIVE_NONE },
};

/* How a catalogue word must sit in the name. */
enum place {
	ANYWHERE,    /* anywhere in the letters, across separators: distinctive stems */
	WORD,        /* a whole token: short words that hide inside others ("eco" in "ecode") */
	WORD_START,  /* the start of a token ("pir" but not "expiry") */
	WORD_END,    /* the end of a token ("wifimac") */
	NAME,        /* the whole name once suffixes are stripped */
	NAME_END,    /* the end of the stripped name ("load_current", not "current_temperature") */
};

#define MAX_EXCEPT 3

/* A catalogue entry. A match is ignored when the letters just before it end with one of
 * not_after, or those just after it start with one of not_before: "door" in "indoor". */
static const struct entry {
	enum sensitive_family family;
	enum place place;
	const char *word;
	const char *not_after[MAX_EXCEPT];
	const char *not_before[MAX_EXCEPT];
} catalogue[] = {
	/* First match wins: compounds before the words they contain ("occupancymode" is a mode,
	 * "noisefloor" radio, "ssids" a scan). */
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "occupancymode", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "presencemode", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "awaymode", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "homeaway", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, WORD_START, "away", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "ecomode", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, WORD, "eco", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "economy", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "holiday", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "vacation", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, WORD_START, "preset", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "absen", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, WORD, "boost", {0}, {0} },
	{ SENSITIVE_PRESENCE_MODE, ANYWHERE, "boostmode", {0}, {0} },

	{ SENSITIVE_RADIO, ANYWHERE, "rssi", {0}, {0} },
	{ SENSITIVE_RADIO, WORD, "dbm", {0}, {0} },
	{ SENSITIVE_RADIO, WORD, "snr", {0}, {0} },
	{ SENSITIVE_RADIO, WORD, "lqi", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "linkquality", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "signalstrength", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "signalquality", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "wifisignal", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "noisefloor", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "signaltonoise", {0}, {0} },
	{ SENSITIVE_RADIO, WORD, "rsrp", {0}, {0} },
	{ SENSITIVE_RADIO, WORD, "rsrq", {0}, {0} },
	{ SENSITIVE_RADIO, WORD, "sinr", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "scan", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "ssids", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "beacon", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "btdevice", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "bledevice", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "bluetoothdevice", {0}, {0} },
	{ SENSITIVE_RADIO, ANYWHERE, "accesspoint", {0}, {0} },

	{ SENSITIVE_NETWORK_ID, ANYWHERE, "ssid", {0}, {0} },        /* ssid, bssid, essid */
	{ SENSITIVE_NETWORK_ID, ANYWHERE, "macaddr", {0}, {0} },
	{ SENSITIVE_NETWORK_ID, WORD_END, "mac", { "h" }, {0} },     /* not "hmac" */
	{ SENSITIVE_NETWORK_ID, ANYWHERE, "ipaddr", {0}, {0} },
	{ SENSITIVE_NETWORK_ID, ANYWHERE, "ipv4", {0}, {0} },
	{ SENSITIVE_NETWORK_ID, ANYWHERE, "ipv6", {0}, {0} },
	{ SENSITIVE_NETWORK_ID, WORD, "ip", {0}, {0} },

	{ SENSITIVE_LOCATION, ANYWHERE, "location", { "al" }, {0} }, /* not "allocation" */
	{ SENSITIVE_LOCATION, ANYWHERE, "latitude", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "longitude", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "altitude", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "latlon", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "latlng", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "lonlat", {0}, {0} },
	{ SENSITIVE_LOCATION, WORD, "lat", {0}, {0} },
	{ SENSITIVE_LOCATION, WORD, "lon", {0}, {0} },
	{ SENSITIVE_LOCATION, WORD, "lng", {0}, {0} },
	{ SENSITIVE_LOCATION, WORD_START, "gps", {0}, {0} },
	{ SENSITIVE_LOCATION, WORD_START, "gnss", {0}, {0} },
	{ SENSITIVE_LOCATION, WORD, "geo", {0}, {0} },               /* not "geometry" */
	{ SENSITIVE_LOCATION, ANYWHERE, "geoloc", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "geohash", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "geofenc", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "geopos", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "geopoint", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "geocoord", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "coordinates", {0}, {0} },
	{ SENSITIVE_LOCATION, NAME, "address", {0}, {0} },           /* not "modbus_address" */
	{ SENSITIVE_LOCATION, ANYWHERE, "streetaddress", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "postaladdress", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "homeaddress", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "postcode", {0}, {0} },
	{ SENSITIVE_LOCATION, ANYWHERE, "zipcode", {0}, {0} },

	{ SENSITIVE_MOTION, ANYWHERE, "motion", { "pro" }, {0} },
	{ SENSITIVE_MOTION, ANYWHERE, "movement", {0}, {0} },
	{ SENSITIVE_MOTION, WORD_START, "pir", {0}, { "at" } },      /* not "expiry", "pirate" */

	{ SENSITIVE_OCCUPANCY, ANYWHERE, "occupan", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "occupied", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "presence", {0}, {0} },
	/* BACnet's "presentValue" is the reading of any object, not a person. */
	{ SENSITIVE_OCCUPANCY, NAME, "present", {0}, { "value" } },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "ispresent", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "anyonepresent", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "someonepresent", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "nobodypresent", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "userpresent", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "peoplepresent", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "people", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, WORD_START, "person", {0}, { "al" } }, /* not "personal" */
	{ SENSITIVE_OCCUPANCY, WORD, "human", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "headcount", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, NAME, "home", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "ishome", { "th" }, {0} },   /* not "this_home" */
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "athome", { "he" }, {0} },   /* not "heat_home" */
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "anyonehome", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "someonehome", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "nobodyhome", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "anybodyhome", {0}, {0} },
	{ SENSITIVE_OCCUPANCY, ANYWHERE, "somebodyhome", {0}, {0} },

	{ SENSITIVE_CONTACT, ANYWHERE, "door", { "in", "out" }, {0} },
	{ SENSITIVE_CONTACT, ANYWHERE, "window", {0}, { "size", "len" } },
	{ SENSITIVE_CONTACT, ANYWHERE, "contact", {0}, { "or" } },   /* not "contactor" */
	{ SENSITIVE_CONTACT, WORD_START, "reed", {0}, {0} },          /* not "screed" */

	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "co2", {0}, {0} },        /* co2, eco2 */
	{ SENSITIVE_AIR_QUALITY, WORD, "co", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "tvoc", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, WORD_START, "voc", {0}, { "ab", "al", "at" } },
	{ SENSITIVE_AIR_QUALITY, WORD_START, "iaq", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, WORD_START, "aqi", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "airquality", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "pm1", { "r" }, {0} },    /* pm1, pm10; not "rpm1" */
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "pm25", { "r" }, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "pm4", { "r" }, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "particulate", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "particle", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, ANYWHERE, "gasresist", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, WORD, "hcho", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, WORD, "ppm", {0}, {0} },
	{ SENSITIVE_AIR_QUALITY, WORD, "ppb", {0}, {0} },

	{ SENSITIVE_SOUND, ANYWHERE, "sound", {0}, {0} },
	{ SENSITIVE_SOUND, ANYWHERE, "noise", {0}, {0} },
	{ SENSITIVE_SOUND, ANYWHERE, "audio", {0}, {0} },
	{ SENSITIVE_SOUND, WORD_START, "loud", {0}, {0} },
	{ SENSITIVE_SOUND, ANYWHERE, "decibel", {0}, {0} },
	{ SENSITIVE_SOUND, ANYWHERE, "microphone", {0}, {0} },
	{ SENSITIVE_SOUND, WORD, "mic", {0}, {0} },
	{ SENSITIVE_SOUND, WORD, "spl", {0}, {0} },
	{ SENSITIVE_SOUND, NAME, "db", {0}, {0} },                  /* alone; "db_size" is a database */
	{ SENSITIVE_SOUND, WORD, "dba", {0}, {0} },

	{ SENSITIVE_LIGHT, ANYWHERE, "light", {0}, { "sav" } },      /* not "daylight_saving" */
	{ SENSITIVE_LIGHT, ANYWHERE, "lux", { "f", "de" }, {0} },    /* not "flux", "deluxe" */
	{ SENSITIVE_LIGHT, WORD, "lx", {0}, {0} },
	{ SENSITIVE_LIGHT, ANYWHERE, "lumin", { "a" }, {0} },        /* not "aluminium" */
	{ SENSITIVE_LIGHT, ANYWHERE, "lumen", {0}, {0} },
	{ SENSITIVE_LIGHT, ANYWHERE, "bright", {0}, {0} },
	{ SENSITIVE_LIGHT, ANYWHERE, "lamp", { "c" }, {0} },         /* not "clamp" */

	{ SENSITIVE_POWER, ANYWHERE, "power", {0}, {0} },
	{ SENSITIVE_POWER, ANYWHERE, "watt", {0}, {0} },
	/* A cumulative energy counter read often enough is power draw by differences. */
	{ SENSITIVE_POWER, ANYWHERE, "energy", {0}, {0} },
	{ SENSITIVE_POWER, ANYWHERE, "consumption", {0}, {0} },
	{ SENSITIVE_POWER, ANYWHERE, "amper", { "d" }, {0} },        /* not "damper" */
	{ SENSITIVE_POWER, WORD, "amps", {0}, {0} },
	{ SENSITIVE_POWER, WORD, "amp", {0}, {0} },
	{ SENSITIVE_POWER, WORD, "load", { "cpu", "sys" }, { "avg", "average" } },
	/* "current" is electrical only at the end: "current_temperature" is a reading. */
	{ SENSITIVE_POWER, NAME_END, "current", { "con" }, {0} },
	{ SENSITIVE_POWER, WORD, "kwh", {0}, {0} },
	{ SENSITIVE_POWER, WORD, "wh", {0}, {0} },
	{ SENSITIVE_POWER, WORD, "kw", {0}, {0} },
};

static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c) { return is_upper(c) || is_lower(c) || is_digit(c); }

static void read_name(const char *name, size_t len, struct reading *r)
{
	/* One letter beyond what is kept, so the camelCase rule can look ahead of the last one. */
	char c[SENSITIVE_NAME_MAX + 1];
	unsigned char sep[SENSITIVE_NAME_MAX + 1];
	size_t m = 0, i, k;
	int gap = 0;

	memset(r, 0, sizeof(*r));
	for (i = 0; name != NULL && i < len && m < sizeof(c); i++) {
		char b = name[i];

		if ((unsigned char)b >= 0x80)
			continue;
		if (!is_alnum(b)) {
			gap = 1;
			continue;
		}
		c[m] = b;
		sep[m++] = (unsigned char)gap;
		gap = 0;
	}
	r->slen = m < SENSITIVE_NAME_MAX ? m : SENSITIVE_NAME_MAX - 1;
	for (k = 0; k < r->slen; k++) {
		/* A hump: "motionDetected", "co2Level"; or the last capital of a run that a lower-case
		 * word follows: "BSSIDValue", "IAQIndex" (two lower-case letters, so "PIRs", "IPv4" and
		 * "MACs" stay whole). Not after a word's one lower-case letter: units are spelt
		 * "dB", "dBm", "kWh", "mA" and "eCO2" is one word. */
		int one_letter = k == 1 || (k > 1 && r->word[k - 1]);
		int hump = k > 0 && is_upper(c[k]) &&
			   (((is_lower(c[k - 1]) && !one_letter) || is_digit(c[k - 1])) ||
			    (is_upper(c[k - 1]) && k + 2 < m && !sep[k + 1] && !sep[k + 2] &&
			     is_lower(c[k + 1]) && is_lower(c[k + 2])));

		r->word[k] = (unsigned char)(k == 0 || sep[k] || hump);
		r->s[k] = is_upper(c[k]) ? (char)(c[k] - 'A' + 'a') : c[k];
	}
	r->s[r->slen] = '\0';
}

/* Strip suffixes from the end of s while a letter remains before them; remember the family of the
 * outermost stripped unit that has one ("level_db": sound). */
static void strip_suffixes(struct reading *r)
{
	size_t n = r->slen, i;
	int again = 1;

	while (again && n > 0) {
		size_t start = n - 1, tlen;

		while (start > 0 && !r->word[start])
			start--;
		tlen = n - start;
		again = 0;
		for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && !again; i++) {
			const struct suffix *x = &suffixes[i];
			size_t xl = strlen(x->text);

			if (tlen == xl && start > 0 && memcmp(r->s + start, x->text, xl) == 0)
				n = start;
			else if (x->glued && n > xl && memcmp(r->s + n - xl, x->text, xl) == 0)
				n -= xl;
			else
				continue;
			if (r->unit == SENSITIVE_NONE)
				r->unit = x->family;
			again = 1;
		}
	}
	r->nlen = n;
}

static int has_at(const char *s, size_t slen, size_t pos, const char *w)
{
	size_t wl = strlen(w);

	return pos <= slen && slen - pos >= wl && memcmp(s + pos, w, wl) == 0;
}

static int excepted(const struct reading *r, const struct entry *e, size_t pos, size_t wl)
{
	size_t i;

	for (i = 0; i < MAX_EXCEPT; i++) {
		const char *a = e->not_after[i], *b = e->not_before[i];

		if (a != NULL && pos >= strlen(a) && has_at(r->s, r->slen, pos - strlen(a), a))
			return 1;
		if (b != NULL && has_at(r->s, r->slen, pos + wl, b))
			return 1;
	}
	return 0;
}

static int matches(const struct reading *r, const struct entry *e)
{
	size_t wl = strlen(e->word), pos;

	if (wl > r->slen)
		return 0;
	if (e->place == NAME || e->place == NAME_END) {
		if (wl > r->nlen)
			return 0;
		pos = e->place == NAME ? 0 : r->nlen - wl;
		return (e->place == NAME_END || r->nlen == wl) &&
		       memcmp(r->s + pos, e->word, wl) == 0 && !excepted(r, e, pos, wl);
	}
	for (pos = 0; pos + wl <= r->slen; pos++) {
		int starts, ends;

		if (r->s[pos] != e->word[0] || memcmp(r->s + pos, e->word, wl) != 0)
			continue;
		starts = r->word[pos];
		ends = pos + wl == r->slen || r->word[pos + wl];
		if ((e->place == WORD && !(starts && ends)) || (e->place == WORD_START && !starts) ||
		    (e->place == WORD_END && !ends))
			continue;
		if (!excepted(r, e, pos, wl))
			return 1;
	}
	return 0;
}

size_t sensitive_normalise(const char *name, size_t len, char out[SENSITIVE_NAME_MAX])
{
	struct reading r;

	read_name(name, len, &r);
	strip_suffixes(&r);
	memcpy(out, r.s, r.nlen);
	out[r.nlen] = '\0';
	return r.nlen;
}

static enum sensitive_family classify(const char *name, size_t len)
{
	struct reading r;
	size_t i;

	read_name(name, len, &r);
	strip_suffixes(&r);
	for (i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
		if (matches(&r, &catalogue[i]))
			return catalogue[i].family;
	}
	return r.unit;
}

/* Devices send the same few field names in every message, and classifying one walks the whole
 * catalogue: a small direct-mapped memo per thread (names up to CACHE_NAME_MAX bytes; longer ones
 * are classified each time) answers the repeats. It holds results of a pure function, so it can
 * never be stale. */
#define CACHE_SLOTS 256
#define CACHE_NAME_MAX 40

struct memo {
	unsigned char len;      /* 0 = empty slot */
	unsigned char family;
	char name[CACHE_NAME_MAX];
};

static _Thread_local struct memo memo[CACHE_SLOTS];

enum sensitive_family sensitive_classify(const char *name, size_t len)
{
	uint32_t h = 2166136261u;   /* FNV-1a */
	struct memo *m;
	size_t i;

	if (len == 0 || len > CACHE_NAME_MAX)
		return classify(name, len);
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	m = &memo[h % CACHE_SLOTS];
	if (m->len == len && memcmp(m->name, name, len) == 0)
		return (enum sensitive_family)m->family;
	m->len = (unsigned char)len;
	memcpy(m->name, name, len);
	m->family = (unsigned char)classify(name, len);
	return (enum sensitive_family)m->family;
}

const char *sensitive_family_name(enum sensitive_family f)
{
	switch (f) {
	case SENSITIVE_NONE: return "none";
	case SENSITIVE_MOTION: return "motion";
	case SENSITIVE_OCCUPANCY: return "occupancy";
	case SENSITIVE_CONTACT: return "contact";
	case SENSITIVE_AIR_QUALITY: return "air quality";
	case SENSITIVE_SOUND: return "sound";
	case SENSITIVE_LIGHT: return "light";
	case SENSITIVE_POWER: return "power";
	case SENSITIVE_RADIO: return "radio";
	case SENSITIVE_NETWORK_ID: return "network id";
	case SENSITIVE_LOCATION: return "location";
	case SENSITIVE_PRESENCE_MODE: return "presence mode";
	}
	return "unknown";
}
