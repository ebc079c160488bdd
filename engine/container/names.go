package container

import (
	"crypto/rand"
	"fmt"
	"math/big"
)

// Names for containers started without --name, in Docker's style
// (adjective_surname of a scientist or engineer).
var (
	adjectives = []string{"brave", "calm", "clever", "eager", "elegant", "fervent", "focused", "gallant", "happy", "jolly",
		"keen", "kind", "lucid", "modest", "nifty", "optimistic", "patient", "quirky", "serene", "sharp",
		"stoic", "tender", "upbeat", "vibrant", "wizardly", "zealous", "admiring", "bold", "dreamy", "frosty"}
	surnames = []string{"hopper", "lovelace", "turing", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "liskov", "hamilton",
		"shannon", "noether", "curie", "meitner", "franklin", "goodall", "tesla", "faraday", "babbage", "backus",
		"kernighan", "pike", "cerf", "kahn", "perlman", "allen", "bell", "wing", "yonath", "mcclintock"}
)

func pick(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(v.Int64())
}

// RandomName returns a name like "happy_turing"; with suffix, a digit is
// appended (after collisions), as Docker does.
func RandomName(suffix bool) string {
	n := adjectives[pick(len(adjectives))] + "_" + surnames[pick(len(surnames))]
	if suffix {
		n += fmt.Sprint(pick(10))
	}
	return n
}
