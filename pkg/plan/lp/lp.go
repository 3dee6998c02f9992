// Package lp solves the small covering linear programs nodewright prices fleets with:
//
//	minimise c·x  subject to  A x ≥ b,  x ≥ 0
//
// where each variable is an instance type offering (x its number of nodes, which the program
// may take in fractions), each row a resource (cpu, memory, pods), A's column the resource a
// node of the offering has for pods, b the pods' demand and c a node's price. Its optimum is
// a lower bound on every fleet that holds the demand (any such fleet, counted by offering, is
// a feasible x), and its duals are the shadow prices of the resources: what one more unit of
// each would cost at the margin.
//
// The solver is the revised simplex method on an m x m basis (m is the number of resources:
// a handful), with the largest-decrease rule and Bland's rule once it stalls, so that it
// always ends. It starts from a basis built from one column that covers every resource, so
// it needs no artificial variables.
package lp

import (
	"errors"
	"fmt"
	"math"
)

// Solution is the optimum of a program.
type Solution struct {
	// X is the value of each variable, Value the objective c·X.
	X     []float64
	Value float64
	// Duals are the shadow prices of the rows: Value = Duals·b, and no column is cheaper
	// than what its resources are worth at them (c_j ≥ Duals·A_j).
	Duals []float64
}

// ErrInfeasible is returned when no column covers every row with demand.
var ErrInfeasible = errors.New("lp: no variable has every resource with demand: the demand cannot be covered")

// eps is the tolerance of the solver's comparisons.
const eps = 1e-9

// Minimize solves min c·x subject to A x ≥ b, x ≥ 0, where cols[j] is the column of variable
// j (len(b) entries, none negative), c[j] > 0 its cost and b ≥ 0 the demand.
func Minimize(c []float64, cols [][]float64, b []float64) (*Solution, error) {
	if err := validate(c, cols, b); err != nil {
		return nil, err
	}
	s, err := newSimplex(c, cols, b)
	if err != nil {
		return nil, err
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.solution(), nil
}

// validate checks the shapes and signs Minimize relies on.
func validate(c []float64, cols [][]float64, b []float64) error {
	if len(c) != len(cols) {
		return fmt.Errorf("lp: %d costs for %d columns", len(c), len(cols))
	}
	for i, v := range b {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("lp: demand %d is %v, want a finite number ≥ 0", i, v)
		}
	}
	for j, col := range cols {
		if len(col) != len(b) {
			return fmt.Errorf("lp: column %d has %d entries, want %d", j, len(col), len(b))
		}
		if !(c[j] > 0) || math.IsInf(c[j], 0) {
			return fmt.Errorf("lp: cost %d is %v, want a finite number > 0", j, c[j])
		}
		for i, v := range col {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("lp: entry %d of column %d is %v, want a finite number ≥ 0", i, j, v)
			}
		}
	}
	return nil
}

// simplex is the state of the revised simplex method on the program in equality form
// A x − s = b, with surplus variables s ≥ 0 of cost 0: variable k < n is x_k, k = n+i is s_i.
type simplex struct {
	c    []float64
	cols [][]float64
	b    []float64
	m, n int
	// basis are the basic variables, one per row; xB their values.
	basis []int
	xB    []float64
	// inv is the inverse of the basis matrix.
	inv [][]float64
}

// newSimplex returns the simplex at a basic feasible solution: the cheapest column that has
// every resource with demand, at the level that covers its scarcest row, and the surplus of
// every other row.
func newSimplex(c []float64, cols [][]float64, b []float64) (*simplex, error) {
	m, n := len(b), len(c)
	s := &simplex{c: c, cols: cols, b: b, m: m, n: n}
	start, level, row := -1, 0.0, 0
	for j, col := range cols {
		lv, r, ok := coverLevel(col, b)
		if ok && (start < 0 || c[j]*lv < c[start]*level) {
			start, level, row = j, lv, r
		}
	}
	if start < 0 {
		return nil, ErrInfeasible
	}
	s.basis = make([]int, m)
	for i := range m {
		s.basis[i] = n + i
	}
	s.basis[row] = start
	if err := s.refresh(); err != nil {
		return nil, err
	}
	return s, nil
}

// coverLevel returns how many nodes of col cover b, the row that decides it, and false if
// col lacks a resource b demands.
func coverLevel(col, b []float64) (level float64, row int, ok bool) {
	for i, v := range b {
		if v <= 0 {
			continue
		}
		if col[i] <= eps {
			return 0, 0, false
		}
		if l := v / col[i]; l > level {
			level, row = l, i
		}
	}
	return level, row, true
}

// column returns the column of variable k in the equality form.
func (s *simplex) column(k int) []float64 {
	if k < s.n {
		return s.cols[k]
	}
	e := make([]float64, s.m)
	e[k-s.n] = -1
	return e
}

// cost returns the cost of variable k.
func (s *simplex) cost(k int) float64 {
	if k < s.n {
		return s.c[k]
	}
	return 0
}

// refresh inverts the basis matrix and computes the basic variables' values.
func (s *simplex) refresh() error {
	B := make([][]float64, s.m)
	for i := range B {
		B[i] = make([]float64, s.m)
	}
	for j, k := range s.basis {
		for i, v := range s.column(k) {
			B[i][j] = v
		}
	}
	inv, err := invert(B)
	if err != nil {
		return err
	}
	s.inv = inv
	s.xB = mulVec(inv, s.b)
	return nil
}

// duals returns c_B B⁻¹.
func (s *simplex) duals() []float64 {
	y := make([]float64, s.m)
	for j, k := range s.basis {
		cb := s.cost(k)
		for i := range s.m {
			y[i] += cb * s.inv[j][i]
		}
	}
	return y
}

// stallAfter is how many pivots without a decrease of the cost make the method switch to
// Bland's rule, which cannot cycle.
const stallAfter = 50

// run pivots until no variable can lower the cost. The iteration limit only guards against
// a bug: Bland's rule ends in finitely many pivots.
func (s *simplex) run() error {
	basic := make([]bool, s.n+s.m)
	stalled := 0
	last := math.Inf(1)
	for iter := 0; iter < 100*(s.n+s.m)+1000; iter++ {
		clear(basic)
		for _, k := range s.basis {
			basic[k] = true
		}
		enter := s.entering(s.duals(), basic, stalled >= stallAfter)
		if enter < 0 {
			return nil
		}
		leave := s.leaving(mulVec(s.inv, s.column(enter)))
		if leave < 0 {
			return errors.New("lp: the program is unbounded")
		}
		s.basis[leave] = enter
		if err := s.refresh(); err != nil {
			return err
		}
		if v := s.value(); v < last-eps {
			last, stalled = v, 0
		} else {
			stalled++
		}
	}
	return errors.New("lp: no optimum within the iteration limit")
}

// entering returns the nonbasic variable with the most negative reduced cost, or with Bland
// the first with a negative one; -1 if none is negative: the basis is optimal.
func (s *simplex) entering(y []float64, basic []bool, bland bool) int {
	best, bestR := -1, -eps
	for k := range s.n + s.m {
		if basic[k] {
			continue
		}
		r := s.cost(k) - dot(y, s.column(k))
		if r < bestR {
			best, bestR = k, r
			if bland {
				return best
			}
		}
	}
	return best
}

// leaving returns the row whose basic variable leaves when the variable of direction d
// enters (the ratio test; ties go to the smallest variable, Bland), -1 if none limits it.
func (s *simplex) leaving(d []float64) int {
	row, ratio := -1, math.Inf(1)
	for i, di := range d {
		if di <= eps {
			continue
		}
		r := max(s.xB[i], 0) / di
		if r < ratio-eps || (r < ratio+eps && row >= 0 && s.basis[i] < s.basis[row]) {
			row, ratio = i, r
		}
	}
	return row
}

// value returns the cost of the current basic solution.
func (s *simplex) value() float64 {
	v := 0.0
	for i, k := range s.basis {
		v += s.cost(k) * s.xB[i]
	}
	return v
}

// solution returns the current basic solution.
func (s *simplex) solution() *Solution {
	x := make([]float64, s.n)
	for i, k := range s.basis {
		if k < s.n {
			x[k] = max(s.xB[i], 0)
		}
	}
	return &Solution{X: x, Value: s.value(), Duals: s.duals()}
}

func dot(a, b []float64) float64 {
	v := 0.0
	for i := range a {
		v += a[i] * b[i]
	}
	return v
}

func mulVec(a [][]float64, v []float64) []float64 {
	out := make([]float64, len(a))
	for i, row := range a {
		out[i] = dot(row, v)
	}
	return out
}

// invert returns the inverse of the square matrix a by Gauss-Jordan elimination with partial
// pivoting.
func invert(a [][]float64) ([][]float64, error) {
	m := len(a)
	w := make([][]float64, m)
	for i := range a {
		w[i] = make([]float64, 2*m)
		copy(w[i], a[i])
		w[i][m+i] = 1
	}
	for col := range m {
		p := col
		for r := col + 1; r < m; r++ {
			if math.Abs(w[r][col]) > math.Abs(w[p][col]) {
				p = r
			}
		}
		if math.Abs(w[p][col]) < 1e-12 {
			return nil, errors.New("lp: singular basis")
		}
		w[col], w[p] = w[p], w[col]
		pivot := w[col][col]
		for k := range w[col] {
			w[col][k] /= pivot
		}
		for r := range m {
			if r == col || w[r][col] == 0 {
				continue
			}
			f := w[r][col]
			for k := range w[r] {
				w[r][k] -= f * w[col][k]
			}
		}
	}
	inv := make([][]float64, m)
	for i := range w {
		inv[i] = w[i][m:]
	}
	return inv, nil
}
