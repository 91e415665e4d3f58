package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// didYouMean is "; did you mean X?" for the candidate closest to name, a
// typo's distance away (an edit for every three letters, two at most), or
// "" when none is that close.
func didYouMean(name string, candidates []string, quote func(string) string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if d == 0 || d > min(2, max(1, len(name)/3)) {
			continue
		}
		if best == "" || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", quote(best))
}

// flagNames are the long names of every flag fs has.
func flagNames(fs ...*pflag.FlagSet) []string {
	var names []string
	for _, f := range fs {
		f.VisitAll(func(fl *pflag.Flag) {
			if !fl.Hidden && !slices.Contains(names, fl.Name) {
				names = append(names, fl.Name)
			}
		})
	}
	return names
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
