// glue.h: the eleven pocketsphinx 5prealpha functions the Go side uses
// (Debian 12: libpocketsphinx.so.3 and libsphinxbase.so.3), reached
// through one table of function pointers that glue_open fills once.
//
// Default build: the table comes from dlopen/dlsym at run time, so the
// package compiles with no pocketsphinx headers or libraries present; the
// prototypes below are written by hand from pocketsphinx.h, cmd_ln.h and
// err.h. Build tag sphinxlinked (needs libpocketsphinx-dev and
// libsphinxbase-dev) links the library instead and assigns the real
// functions to the same table, so the compiler checks those hand-written
// prototypes against the headers:
//
//	go vet -tags sphinxlinked ./pipeline/localgw/sphinx/
//
// Errors: the library reports through its log (err.h). glue_open installs
// one log callback for the process and silences the log file. Each glue_*
// call points a thread-local record at its caller's glue_err for the
// length of the call only (a cgo call stays on one OS thread), so the
// ERROR lines of that call, and only of that call, reach Go. A FATAL line,
// which the library follows with exit(), jumps back to the glue call
// instead (setjmp/longjmp within C frames only, never across Go's).
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef SPHINX_LINKED
#include <pocketsphinx.h>
#include <sphinxbase/cmd_ln.h>
#include <sphinxbase/err.h>
#else
#include <dlfcn.h>
typedef struct ps_decoder_s ps_decoder_t;
typedef struct cmd_ln_s cmd_ln_t;
typedef struct arg_s arg_t;
typedef int int32;  // sphinxbase prim_type.h
typedef short int16;
typedef enum { ERR_DEBUG, ERR_INFO, ERR_INFOCONT, ERR_WARN, ERR_ERROR, ERR_FATAL, ERR_MAX } err_lvl_t;
typedef void (*err_cb_f)(void *user_data, err_lvl_t, const char *, ...);
#endif

typedef struct {
	arg_t const *(*ps_args)(void);
	cmd_ln_t *(*cmd_ln_parse_r)(cmd_ln_t *, arg_t const *, int32, char *[], int32);
	int (*cmd_ln_free_r)(cmd_ln_t *);
	ps_decoder_t *(*ps_init)(cmd_ln_t *);
	int (*ps_free)(ps_decoder_t *);
	int (*ps_start_utt)(ps_decoder_t *);
	int (*ps_process_raw)(ps_decoder_t *, int16 const *, size_t, int, int);
	int (*ps_end_utt)(ps_decoder_t *);
	char const *(*ps_get_hyp)(ps_decoder_t *, int32 *);
	void (*err_set_callback)(err_cb_f, void *);
	void (*err_set_logfp)(FILE *);
} psapi;

enum { GLUE_ERRLEN = 512 };

// glue_err is what one call's log leaves for Go: its first and last ERROR
// (or FATAL) lines (the last is often a summary such as "Failed to read
// acoustic model" and the first the reason), and whether one was FATAL.
typedef struct {
	char first[GLUE_ERRLEN];
	char last[GLUE_ERRLEN];
	int fatal;
} glue_err;

// The running glue call's error record and recovery point (NULL outside
// glue calls). Thread-local and set only for the length of one call.
static __thread glue_err *capture;
static __thread jmp_buf *recover_at;

// log_cb receives every log line. It keeps the running call's ERROR and
// FATAL lines and drops the rest (INFO, WARN). A FATAL line is followed
// by exit() in the library (E_FATAL: a corrupt model file, for one); the
// callback jumps back to the glue call instead, so the process survives
// and Go gets an error. What the interrupted call had allocated leaks.
static void log_cb(void *user, err_lvl_t lvl, const char *fmt, ...) {
	(void)user;
	if (lvl < ERR_ERROR || capture == NULL) return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(capture->last, GLUE_ERRLEN, fmt, ap);
	va_end(ap);
	size_t n = strlen(capture->last);
	while (n > 0 && (capture->last[n - 1] == '\n' || capture->last[n - 1] == ' ')) capture->last[--n] = 0;
	if (capture->first[0] == 0) memcpy(capture->first, capture->last, GLUE_ERRLEN);
	if (lvl == ERR_FATAL && recover_at != NULL) {
		capture->fatal = 1;
		jmp_buf *jb = recover_at;
		recover_at = NULL;
		longjmp(*jb, 1);
	}
}

static void begin(glue_err *err, jmp_buf *jb) {
	err->first[0] = err->last[0] = 0;
	err->fatal = 0;
	capture = err;
	recover_at = jb;
}

static void finish(void) {
	capture = NULL;
	recover_at = NULL;
}

// glue_open fills a newly allocated table (never freed: it lives as long as
// the process) or returns NULL with the reason in err.
static psapi *glue_open(const char *name, char *err) {
	psapi *api = calloc(1, sizeof *api);
	if (api == NULL) {
		snprintf(err, GLUE_ERRLEN, "out of memory");
		return NULL;
	}
#ifdef SPHINX_LINKED
	(void)name;
	api->ps_args = ps_args;
	api->cmd_ln_parse_r = cmd_ln_parse_r;
	api->cmd_ln_free_r = cmd_ln_free_r;
	api->ps_init = ps_init;
	api->ps_free = ps_free;
	api->ps_start_utt = ps_start_utt;
	api->ps_process_raw = ps_process_raw;
	api->ps_end_utt = ps_end_utt;
	api->ps_get_hyp = ps_get_hyp;
	api->err_set_callback = err_set_callback;
	api->err_set_logfp = err_set_logfp;
#else
	// RTLD_LOCAL: the symbols stay private to this table. The handle is
	// never closed: decoders may live until the process ends.
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, GLUE_ERRLEN, "%s", dlerror());
		free(api);
		return NULL;
	}
	// dlsym on the handle also searches its dependencies (libsphinxbase).
#define SYM(f)                                                      \
	if ((*(void **)&api->f = dlsym(h, #f)) == NULL) {               \
		snprintf(err, GLUE_ERRLEN, "%s has no symbol %s", name, #f); \
		dlclose(h);                                                 \
		free(api);                                                  \
		return NULL;                                                \
	}
	SYM(ps_args) SYM(cmd_ln_parse_r) SYM(cmd_ln_free_r) SYM(ps_init) SYM(ps_free)
	SYM(ps_start_utt) SYM(ps_process_raw) SYM(ps_end_utt) SYM(ps_get_hyp)
	SYM(err_set_callback) SYM(err_set_logfp)
#undef SYM
#endif
	api->err_set_callback(log_cb, NULL);
	api->err_set_logfp(NULL); // cmd_ln also prints its option table to the log file
	return api;
}

// Each call below runs the library between begin and finish, with a
// recovery point for a FATAL error: setjmp returns again, non-zero, when
// log_cb jumps back. Locals changed after setjmp are volatile.

// glue_init parses argv strictly (an unknown option fails) and creates a
// decoder, or returns NULL with the library's errors in err.
static ps_decoder_t *glue_init(const psapi *api, int argc, char **argv, glue_err *err) {
	jmp_buf jb;
	ps_decoder_t *volatile ps = NULL;
	begin(err, &jb);
	if (setjmp(jb) == 0) {
		cmd_ln_t *cfg = api->cmd_ln_parse_r(NULL, api->ps_args(), argc, argv, 1);
		if (cfg != NULL) {
			ps = api->ps_init(cfg);
			api->cmd_ln_free_r(cfg); // the decoder holds its own reference
		}
	} else {
		ps = NULL;
	}
	finish();
	return ps;
}

static int glue_start(const psapi *api, ps_decoder_t *ps, glue_err *err) {
	jmp_buf jb;
	volatile int r = -1;
	begin(err, &jb);
	if (setjmp(jb) == 0) r = api->ps_start_utt(ps);
	finish();
	return r;
}

static int glue_process(const psapi *api, ps_decoder_t *ps, const int16 *pcm, size_t n, glue_err *err) {
	jmp_buf jb;
	volatile int r = -1;
	begin(err, &jb);
	if (setjmp(jb) == 0) r = api->ps_process_raw(ps, pcm, n, 0, 0);
	finish();
	return r;
}

static int glue_end(const psapi *api, ps_decoder_t *ps, glue_err *err) {
	jmp_buf jb;
	volatile int r = -1;
	begin(err, &jb);
	if (setjmp(jb) == 0) r = api->ps_end_utt(ps);
	finish();
	return r;
}

// glue_hyp is the best hypothesis so far, or NULL; the decoder owns it
// until its next call, so the caller copies it before letting go.
static char const *glue_hyp(const psapi *api, ps_decoder_t *ps) {
	int32 score;
	return api->ps_get_hyp(ps, &score);
}

// glue_free frees the decoder and gives the freed model memory back to the
// OS: cgo calls run on whichever thread, each with its own glibc arena, and
// without the trim each arena keeps a freed ~90 MB model copy.
static void glue_free(const psapi *api, ps_decoder_t *ps) {
	api->ps_free(ps);
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
