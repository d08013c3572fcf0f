package smtp

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Argon2id (version 0x13) vectors of the reference implementation's test
// suite, P-H-C/phc-winner-argon2 src/test.c: hashes of "password" (or
// "differentpassword") with salt "somesalt" (or "diffsalt"). They come from
// another implementation, so passing them is not circular.
var pwReferenceVectors = []struct {
	password, hash string
	large          bool // 256 MiB: skipped with -short
}{
	{"password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", false},
	{"password", "$argon2id$v=19$m=262144,t=2,p=1$c29tZXNhbHQ$eP4eyR+zqlZX1y5xCFTkw9m5GYx0L5YWwvCFvtlbLow", true},
	{"password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", false},
	{"password", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", false},
	{"password", "$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHQ$9qWtwbpyPd3vm1rB1GThgPzZ3/ydHL92zKL+15XZypg", false},
	{"password", "$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$kCXUjmjvc5XMqQedpMTsOv+zyJEf5PhtGiUghW9jFyw", false},
	{"differentpassword", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$C4TWUs9rDEvq7w3+J4umqA32aWKB1+DSiRuBfYxFj94", false},
	{"password", "$argon2id$v=19$m=65536,t=2,p=1$ZGlmZnNhbHQ$vfMrBczELrFdWP0ZsfhWsRPaHppYdP3MVEMIVlqoFBw", false},
}

func TestCheckPasswordArgon2idReference(t *testing.T) {
	for _, v := range pwReferenceVectors {
		t.Run(v.hash, func(t *testing.T) {
			if v.large && testing.Short() {
				t.Skip("256 MiB vector")
			}
			if !CheckPassword(v.hash, v.password) {
				t.Errorf("%q does not match its reference hash", v.password)
			}
			if CheckPassword(v.hash, v.password+"x") || CheckPassword(v.hash, "") {
				t.Error("a wrong password matches")
			}
		})
	}
}

// Vectors of crypt_blowfish (wrapper.c), used by most bcrypt test suites.
var pwBcryptVectors = []struct{ password, hash string }{
	{"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
	{"U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"},
	{"U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"},
	{"", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"},
}

func TestCheckPasswordBcrypt(t *testing.T) {
	generated, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	vectors := append(slices.Clone(pwBcryptVectors), struct{ password, hash string }{"s3cret pass", string(generated)})
	for _, v := range vectors {
		// $2a$, $2b$ and $2y$ differ only in bugs of other implementations
		// with non-ASCII input; the hash is the same.
		for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
			hash := prefix + v.hash[4:]
			if !CheckPassword(hash, v.password) {
				t.Errorf("%q does not match %s", v.password, hash)
			}
			if CheckPassword(hash, v.password+"!") {
				t.Errorf("wrong password matches %s", hash)
			}
		}
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	const good = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	bc := pwBcryptVectors[0].hash
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "password"},
		{"argon2i", "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8"},
		{"argon2d", strings.Replace(good, "argon2id", "argon2d", 1)},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1)},
		{"no version", strings.Replace(good, "v=19$", "", 1)},
		{"missing $ before salt", strings.Replace(good, "p=1$", "p=1", 1)},
		{"missing $ before hash", strings.Replace(good, "bHQ$", "bHQ", 1)},
		{"empty salt", strings.Replace(good, "c29tZXNhbHQ", "", 1)},
		{"salt under 8 bytes", strings.Replace(good, "c29tZXNhbHQ", "c29tZXM", 1)},
		{"hash under 16 bytes", strings.Replace(good, "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "nf65EOgLrQMR", 1)},
		{"empty hash", strings.TrimSuffix(good, "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4")},
		{"padded base64", good + "="},
		{"url base64", strings.Replace(good, "/", "_", 1)},
		{"non-canonical base64", strings.Replace(good, "i/4", "i/5", 1)},
		{"trailing field", good + "$"},
		{"keyid parameter", strings.Replace(good, "p=1", "p=1,keyid=AAAA", 1)},
		{"parameters reordered", strings.Replace(good, "m=256,t=2", "t=2,m=256", 1)},
		{"parameter missing", strings.Replace(good, "t=2,", "", 1)},
		{"leading zero", strings.Replace(good, "m=256", "m=0256", 1)},
		{"plus sign", strings.Replace(good, "t=2", "t=+2", 1)},
		{"negative", strings.Replace(good, "t=2", "t=-2", 1)},
		{"not a number", strings.Replace(good, "p=1", "p=x", 1)},
		{"no passes", strings.Replace(good, "t=2", "t=0", 1)},
		{"no lanes", strings.Replace(good, "p=1", "p=0", 1)},
		{"memory under 8 KiB per lane", strings.Replace(good, "m=256,t=2,p=1", "m=15,t=2,p=2", 1)},
		{"space", good + " "},
		{"bcrypt $2x$", "$2x$" + bc[4:]},
		{"bcrypt $2$", "$2$" + bc[4:]},
		{"bcrypt truncated", bc[:40]},
		{"bcrypt bad cost", "$2a$xx$" + bc[7:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if CheckPassword(tt.hash, "password") || CheckPassword(tt.hash, "U*U") {
				t.Errorf("malformed hash %q matched", tt.hash)
			}
			pwExpectInvalid(t, tt.hash)
		})
	}
}

// Hashes that would take gigabytes or minutes must be refused before any
// work is done.
func TestCheckPasswordOversizeParameters(t *testing.T) {
	const good = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	long := strings.Repeat("A", 90) // 67 bytes
	bc := pwBcryptVectors[0].hash
	tests := []struct{ name, hash string }{
		{"memory 4 GiB", strings.Replace(good, "m=256", "m=4194304", 1)},
		{"memory just over 1 GiB", strings.Replace(good, "m=256", "m=1048577", 1)},
		{"memory overflows uint32", strings.Replace(good, "m=256", "m=99999999999", 1)},
		{"passes 17", strings.Replace(good, "t=2", "t=17", 1)},
		{"passes max uint32", strings.Replace(good, "t=2", "t=4294967295", 1)},
		{"lanes 17", strings.Replace(good, "p=1", "p=17", 1)},
		{"lanes 256 (uint8 wrap)", strings.Replace(good, "p=1", "p=256", 1)},
		{"salt 67 bytes", strings.Replace(good, "c29tZXNhbHQ", long, 1)},
		{"hash 67 bytes", strings.Replace(good, "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", long, 1)},
		{"bcrypt cost 16", "$2a$16$" + bc[7:]},
		{"bcrypt cost 31", "$2b$31$" + bc[7:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if CheckPassword(tt.hash, "password") {
				t.Error("oversize hash matched")
			}
			pwExpectInvalid(t, tt.hash)
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("refusing took %v: the work was done before the bounds check", d)
			}
		})
	}
	// The largest accepted parameters still parse (without running them).
	edge := strings.Replace(good, "m=256,t=2,p=1", "m=1048576,t=16,p=16", 1)
	if _, err := parseArgon2id(edge); err != nil {
		t.Errorf("parameters at the bounds refused: %v", err)
	}
}

// pwExpectInvalid checks that ValidatePasswordHash refuses hash without
// echoing its salt or hash fields.
func pwExpectInvalid(t *testing.T, hash string) {
	t.Helper()
	err := ValidatePasswordHash(hash)
	if err == nil {
		t.Fatalf("ValidatePasswordHash(%q) = nil", hash)
	}
	for _, secret := range []string{"c29tZXNhbHQ", "nf65EOgLrQMR", "CCCCCCCCCCCCCCCC"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q echoes the hash", err)
		}
	}
}

func TestValidatePasswordHashAccepts(t *testing.T) {
	own, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	hashes := []string{own, pwBcryptVectors[0].hash, "$2y$" + pwBcryptVectors[0].hash[4:]}
	for _, v := range pwReferenceVectors {
		hashes = append(hashes, v.hash)
	}
	for _, h := range hashes {
		if err := ValidatePasswordHash(h); err != nil {
			t.Errorf("ValidatePasswordHash(%q): %v", h, err)
		}
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("hash %q does not carry the expected parameters", hash)
	}
	p, err := parseArgon2id(hash)
	if err != nil || len(p.salt) != 16 || len(p.tag) != 32 {
		t.Fatalf("parse own hash: %+v, %v", p, err)
	}
	if !CheckPassword(hash, "correct horse battery staple") {
		t.Error("password does not match its own hash")
	}
	if CheckPassword(hash, "correct horse battery stapler") {
		t.Error("wrong password matches")
	}
	again, err := HashPassword("correct horse battery staple")
	if err != nil || again == hash {
		t.Errorf("second hash %q, %v: salt not random", again, err)
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
}

// DummyCheck must cost what a real check costs (an unknown user must not
// answer faster than a wrong password). The work is compared by the bytes
// each allocates (argon2id's memory parameter, deterministic), and the
// time only against a bound loose enough that a busy CI machine cannot
// trip it (it flaked at 3x under load).
func TestDummyCheckCost(t *testing.T) {
	hash, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	genuineBytes := pwAllocated(func() { CheckPassword(hash, "guess") })
	dummyBytes := pwAllocated(func() { DummyCheck("guess") })
	if dummyBytes < genuineBytes*9/10 || dummyBytes > genuineBytes*11/10 {
		t.Errorf("DummyCheck allocated %d bytes, a real check %d", dummyBytes, genuineBytes)
	}
	genuine := pwFastest(func() { CheckPassword(hash, "guess") })
	dummy := pwFastest(func() { DummyCheck("guess") })
	if dummy < genuine/10 || dummy > genuine*10 {
		t.Errorf("DummyCheck took %v, a real check %v", dummy, genuine)
	}
}

func pwAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func pwFastest(f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}
