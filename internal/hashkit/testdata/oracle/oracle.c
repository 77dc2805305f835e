/*
 * oracle: answers key-placement questions with nutcracker 0.5.0's own code.
 *
 * It dlopen()s a copy of /usr/sbin/nutcracker whose DF_1_PIE flag gen.go has
 * cleared (glibc refuses to dlopen a PIE executable otherwise) and calls the
 * exported hash_*, ketama_update, modula_update, random_update,
 * ketama_dispatch, modula_dispatch and server_pool_idx on a hand-made
 * struct server_pool. The field offsets below were read from the
 * disassembly of Debian's 0.5.0+dfsg-2 amd64 binary; gen.go checks the
 * build id, and another build needs them read again.
 *
 * Protocol, one command per line on stdin, one answer line on stdout:
 *   H <keyhex>                       the 12 hashes, each checked at 4 alignments
 *   R <dist> <hash#> <taghex|-> <n>  then n lines "<namehex> <weight> <live>":
 *                                    build the pool; answers "OK <status> <ncontinuum> <nlive>"
 *   C                                the continuum: "<n> <server>:<value> ..."
 *   K <keyhex>                       server_pool_idx(key)
 *   D <hashhex>                      ketama_dispatch / modula_dispatch(hash)
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* struct server_pool */
#define POOL_SIZE          0x400
#define POOL_SERVER_NELEM  0x30  /* struct array server: uint32 nelem */
#define POOL_SERVER_ELEM   0x38  /*   void *elem */
#define POOL_SERVER_SIZE   0x40  /*   size_t size */
#define POOL_SERVER_NALLOC 0x48  /*   uint32 nalloc */
#define POOL_NCONTINUUM    0x50
#define POOL_CONTINUUM     0x58  /* struct continuum { uint32 index; uint32 value; } * */
#define POOL_NLIVE         0x60
#define POOL_DIST_TYPE     0x110
#define POOL_KEY_HASH      0x118
#define POOL_HASH_TAG_LEN  0x120
#define POOL_HASH_TAG_DATA 0x128
#define POOL_FLAGS         0x16c /* bit 0: auto_eject_hosts */
/* struct server (array element; any size >= 0xe0 works) */
#define SERVER_SIZE        0x100
#define SERVER_NAME_LEN    0x20
#define SERVER_NAME_DATA   0x28
#define SERVER_WEIGHT      0x44
#define SERVER_NEXT_RETRY  0xd8

#define AT(p, off, type) (*(type *)((unsigned char *)(p) + (off)))

typedef uint32_t (*hash_fn)(const char *, size_t);
typedef int (*update_fn)(void *);
typedef uint32_t (*dispatch_fn)(void *, uint32_t, uint32_t);
typedef uint32_t (*idx_fn)(void *, const uint8_t *, uint32_t);

static const char *hash_names[12] = {
    "hash_one_at_a_time", "hash_md5", "hash_crc16", "hash_crc32",
    "hash_crc32a", "hash_fnv1_64", "hash_fnv1a_64", "hash_fnv1_32",
    "hash_fnv1a_32", "hash_hsieh", "hash_murmur", "hash_jenkins",
};

static char line[1 << 21];
static char key[1 << 20];
static char shifted[(1 << 20) + 64];
static unsigned char pool[POOL_SIZE];
static unsigned char *servers;
static char tag[8];

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static size_t unhex(const char *s, char *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
    }
    return n;
}

static void *must(void *lib, const char *sym)
{
    void *p = dlsym(lib, sym);
    if (p == NULL) {
        fprintf(stderr, "oracle: no symbol %s\n", sym);
        exit(1);
    }
    return p;
}

int main(void)
{
    const char *so = getenv("NC_SO");
    void *lib = so ? dlopen(so, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (lib == NULL) {
        fprintf(stderr, "oracle: set NC_SO: %s\n", so ? dlerror() : "unset");
        return 1;
    }
    hash_fn hash[12];
    for (int i = 0; i < 12; i++) {
        hash[i] = (hash_fn)must(lib, hash_names[i]);
    }
    update_fn update[3] = {
        (update_fn)must(lib, "ketama_update"),
        (update_fn)must(lib, "modula_update"),
        (update_fn)must(lib, "random_update"),
    };
    dispatch_fn dispatch[2] = {
        (dispatch_fn)must(lib, "ketama_dispatch"),
        (dispatch_fn)must(lib, "modula_dispatch"),
    };
    idx_fn pool_idx = (idx_fn)must(lib, "server_pool_idx");

    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        switch (line[0]) {
        case 'H': {
            size_t n = unhex(line + 2, key);
            for (int i = 0; i < 12; i++) {
                uint32_t v = 0;
                for (int align = 0; align < 4; align++) {
                    memcpy(shifted + 16 + align, key, n);
                    uint32_t w = hash[i](shifted + 16 + align, n);
                    if (align > 0 && w != v) {
                        fprintf(stderr, "oracle: %s depends on alignment\n", hash_names[i]);
                        return 2;
                    }
                    v = w;
                }
                printf("%s%08x", i ? " " : "", v);
            }
            printf("\n");
            break;
        }
        case 'R': {
            int dist, hi, n;
            char taghex[64];
            if (sscanf(line + 2, "%d %d %63s %d", &dist, &hi, taghex, &n) != 4 ||
                dist < 0 || dist > 2 || hi < 0 || hi > 11 || n < 1) {
                fprintf(stderr, "oracle: bad R line\n");
                return 3;
            }
            free(servers);
            servers = calloc((size_t)n, SERVER_SIZE);
            memset(pool, 0, sizeof(pool));
            AT(pool, POOL_SERVER_NELEM, uint32_t) = (uint32_t)n;
            AT(pool, POOL_SERVER_ELEM, void *) = servers;
            AT(pool, POOL_SERVER_SIZE, size_t) = SERVER_SIZE;
            AT(pool, POOL_SERVER_NALLOC, uint32_t) = (uint32_t)n;
            AT(pool, POOL_DIST_TYPE, uint32_t) = (uint32_t)dist;
            AT(pool, POOL_KEY_HASH, hash_fn) = hash[hi];
            if (strcmp(taghex, "-") != 0) {
                AT(pool, POOL_HASH_TAG_LEN, uint32_t) = (uint32_t)unhex(taghex, tag);
                AT(pool, POOL_HASH_TAG_DATA, char *) = tag;
            }
            pool[POOL_FLAGS] |= 1;
            for (int i = 0; i < n; i++) {
                char namehex[1200];
                int weight, live;
                if (fgets(line, sizeof(line), stdin) == NULL ||
                    sscanf(line, "%1199s %d %d", namehex, &weight, &live) != 3) {
                    fprintf(stderr, "oracle: bad server line\n");
                    return 3;
                }
                unsigned char *s = servers + (size_t)i * SERVER_SIZE;
                char *name = malloc(strlen(namehex) / 2 + 1); /* leaked per pool: a test tool */
                AT(s, SERVER_NAME_LEN, uint32_t) = (uint32_t)unhex(namehex, name);
                AT(s, SERVER_NAME_DATA, char *) = name;
                AT(s, SERVER_WEIGHT, uint32_t) = (uint32_t)weight;
                /* ejected = retry time far in the future */
                AT(s, SERVER_NEXT_RETRY, int64_t) = live ? 0 : (int64_t)1 << 62;
            }
            int status = update[dist](pool);
            printf("OK %d %u %u\n", status, AT(pool, POOL_NCONTINUUM, uint32_t),
                   AT(pool, POOL_NLIVE, uint32_t));
            break;
        }
        case 'C': {
            uint32_t n = AT(pool, POOL_NCONTINUUM, uint32_t);
            uint32_t *c = AT(pool, POOL_CONTINUUM, uint32_t *);
            printf("%u", n);
            for (uint32_t i = 0; i < n; i++) {
                printf(" %u:%08x", c[2 * i], c[2 * i + 1]);
            }
            printf("\n");
            break;
        }
        case 'K': {
            size_t n = unhex(line + 2, key);
            printf("%u\n", pool_idx(pool, (uint8_t *)key, (uint32_t)n));
            break;
        }
        case 'D': {
            uint32_t dist = AT(pool, POOL_DIST_TYPE, uint32_t);
            uint32_t h = (uint32_t)strtoul(line + 2, NULL, 16);
            if (dist > 1) {
                fprintf(stderr, "oracle: D needs ketama or modula\n");
                return 3;
            }
            printf("%u\n", dispatch[dist](AT(pool, POOL_CONTINUUM, void *),
                                          AT(pool, POOL_NCONTINUUM, uint32_t), h));
            break;
        }
        default:
            fprintf(stderr, "oracle: unknown command %c\n", line[0]);
            return 3;
        }
        fflush(stdout);
    }
    return 0;
}
