package state

import "slices"

func sortInts(s []int64) { slices.Sort(s) }
