package lp

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(a), math.Abs(b)) }

// TestMinimize: crafted programs whose optimum is known.
func TestMinimize(t *testing.T) {
	tests := []struct {
		name      string
		c         []float64
		cols      [][]float64
		b         []float64
		wantValue float64
		wantDuals []float64
	}{
		{
			name: "one resource: the cheapest per unit, in fractions",
			c:    []float64{1, 3, 2}, cols: [][]float64{{2}, {8}, {3}}, b: []float64{10},
			// per unit: 0.5, 0.375, 0.667
			wantValue: 3.75, wantDuals: []float64{0.375},
		},
		{
			name: "two resources: a cpu-heavy and a memory-heavy type together",
			c:    []float64{1, 1, 3}, cols: [][]float64{{4, 1}, {1, 4}, {4, 4}}, b: []float64{5, 5},
			wantValue: 2, wantDuals: []float64{0.2, 0.2},
		},
		{
			name: "two resources: a balanced type is cheaper than the mix",
			c:    []float64{1, 1, 1.5}, cols: [][]float64{{4, 1}, {1, 4}, {4, 4}}, b: []float64{5, 5},
			wantValue: 1.875,
		},
		{
			name: "a resource without demand is free",
			c:    []float64{1, 2}, cols: [][]float64{{1, 100}, {4, 1}}, b: []float64{8, 0},
			wantValue: 4, wantDuals: []float64{0.5, 0},
		},
		{
			name: "no demand at all",
			c:    []float64{1}, cols: [][]float64{{1, 1}}, b: []float64{0, 0},
			wantValue: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sol, err := Minimize(tt.c, tt.cols, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if !near(sol.Value, tt.wantValue) {
				t.Errorf("value %v, want %v (x = %v)", sol.Value, tt.wantValue, sol.X)
			}
			for i, d := range tt.wantDuals {
				if !near(sol.Duals[i], d) {
					t.Errorf("duals %v, want %v", sol.Duals, tt.wantDuals)
				}
			}
			checkOptimal(t, tt.c, tt.cols, tt.b, sol)
		})
	}
}

// checkOptimal checks that sol is feasible, that its duals are (no column is cheaper than
// its resources at the duals, none negative) and that both give the same value: by duality,
// that is optimality.
func checkOptimal(t *testing.T, c []float64, cols [][]float64, b []float64, sol *Solution) {
	t.Helper()
	for i := range b {
		covered := 0.0
		for j, col := range cols {
			if sol.X[j] < -1e-9 {
				t.Fatalf("x[%d] = %v < 0", j, sol.X[j])
			}
			covered += col[i] * sol.X[j]
		}
		if covered < b[i]-1e-6*max(1, b[i]) {
			t.Fatalf("row %d covered %v < demand %v", i, covered, b[i])
		}
	}
	for i, y := range sol.Duals {
		if y < -1e-9 {
			t.Fatalf("dual %d = %v < 0", i, y)
		}
	}
	for j, col := range cols {
		worth := 0.0
		for i, v := range col {
			worth += sol.Duals[i] * v
		}
		if worth > c[j]+1e-6*max(1, c[j]) {
			t.Fatalf("column %d costs %v, worth %v at the duals %v: not optimal", j, c[j], worth, sol.Duals)
		}
	}
	dual := 0.0
	for i, y := range sol.Duals {
		dual += y * b[i]
	}
	if !near(dual, sol.Value) {
		t.Fatalf("primal %v, dual %v: not optimal", sol.Value, dual)
	}
}

// TestMinimizeRandom: random programs shaped like a catalog (three resources, hundreds of
// columns, many alike) are solved to optimality, which checkOptimal proves by duality.
func TestMinimizeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2026))
	for range 200 {
		n := 1 + r.IntN(400)
		c := make([]float64, n)
		cols := make([][]float64, n)
		for j := range n {
			size := float64(int(1) << r.IntN(8))
			cols[j] = []float64{size, size * float64(1+r.IntN(8)), float64(10 + r.IntN(100))}
			c[j] = size * (0.01 + r.Float64()*0.05)
			if r.IntN(4) == 0 && j > 0 { // a copy of another column at another price
				cols[j] = cols[r.IntN(j)]
			}
		}
		b := []float64{r.Float64() * 5000, r.Float64() * 20000, float64(r.IntN(10000))}
		sol, err := Minimize(c, cols, b)
		if err != nil {
			t.Fatal(err)
		}
		checkOptimal(t, c, cols, b, sol)
	}
}

func TestMinimizeErrors(t *testing.T) {
	if _, err := Minimize([]float64{1}, [][]float64{{1, 0}}, []float64{1, 1}); err != ErrInfeasible {
		t.Errorf("a demand no column has: err %v, want ErrInfeasible", err)
	}
	for _, tc := range []struct {
		c    []float64
		cols [][]float64
		b    []float64
	}{
		{[]float64{0}, [][]float64{{1}}, []float64{1}},
		{[]float64{1}, [][]float64{{-1}}, []float64{1}},
		{[]float64{1}, [][]float64{{1}}, []float64{-1}},
		{[]float64{1, 2}, [][]float64{{1}}, []float64{1}},
		{[]float64{1}, [][]float64{{1, 2}}, []float64{1}},
	} {
		if _, err := Minimize(tc.c, tc.cols, tc.b); err == nil {
			t.Errorf("Minimize(%v, %v, %v): no error", tc.c, tc.cols, tc.b)
		}
	}
}
