package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chart draws the diverse-mix results to a PNG at path: pods/s (left) and fleet USD/h
// (right) against the pod count, one line per catalog, both axes logarithmic.
func chart(results []PlanResult, path string) error {
	throughput, cost := plot.New(), plot.New()
	for _, p := range []*plot.Plot{throughput, cost} {
		p.X.Label.Text = "pods (diverse mix)"
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
	}
	throughput.Title.Text = "Plan throughput"
	throughput.Y.Label.Text = "pods/s"
	cost.Title.Text = "Fleet cost of the plan"
	// Cost rises with the pod count: the top left stays clear for the legend.
	cost.Legend.Left = true
	cost.Y.Label.Text = "USD/h"
	var tp, cp []any
	for _, catalog := range []string{"real", "synthetic"} {
		var pps, usd plotter.XYs
		for _, r := range results {
			if r.Catalog == catalog && r.Mix == "diverse" && r.PodsPerSecond > 0 && r.USDPerHour > 0 {
				pps = append(pps, plotter.XY{X: float64(r.Pods), Y: r.PodsPerSecond})
				usd = append(usd, plotter.XY{X: float64(r.Pods), Y: r.USDPerHour})
			}
		}
		if len(pps) > 0 {
			tp = append(tp, catalog+" catalog", pps)
			cp = append(cp, catalog+" catalog", usd)
		}
	}
	if len(tp) == 0 {
		return fmt.Errorf("no diverse-mix results to chart")
	}
	if err := plotutil.AddLinePoints(throughput, tp...); err != nil {
		return err
	}
	if err := plotutil.AddLinePoints(cost, cp...); err != nil {
		return err
	}
	img := vgimg.New(vg.Points(900), vg.Points(360))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadY: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10), PadTop: vg.Points(10), PadBottom: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{throughput, cost}}, tiles, dc)
	throughput.Draw(canvases[0][0])
	cost.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
