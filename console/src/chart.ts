// Time-series charts (uPlot), created once the figure is in the page and
// updated in place on live refresh.
import uPlot from "uplot";
import { h } from "./ui";

const COLORS = ["#1f5fbf", "#b8430c", "#2e7d32", "#6a3d9a", "#8a6d00"];

export class Chart {
  readonly el: HTMLElement;
  private plot?: uPlot;
  private readonly box: HTMLDivElement;
  private readonly summary: HTMLParagraphElement;
  private sig = "";

  constructor(
    private readonly title: string,
    private readonly series: string[],
    private readonly xLabel = "height",
  ) {
    this.box = h("div", { class: "chartbox", "aria-hidden": "true" });
    this.summary = h("p", { class: "sr-only" });
    this.el = h("figure", { class: "chart" }, h("figcaption", null, title), this.box, this.summary);
  }

  /** x: block heights; ys: one array per series. */
  set(x: number[], ys: number[][]) {
    const sig = `${x.length}:${x[x.length - 1]}:${ys.map((y) => y[y.length - 1]).join(",")}`;
    if (sig === this.sig) return;
    this.sig = sig;
    const last = ys.map((y, i) => `${this.series[i]} ${y.length ? y[y.length - 1].toLocaleString("en-US") : "none"}`);
    this.summary.textContent = `${this.title}: ${x.length} points; latest ${last.join(", ")}.`;
    const data = [x, ...ys] as uPlot.AlignedData;
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    if (!this.el.isConnected) return;
    const width = Math.max(280, Math.min(this.box.clientWidth || 640, 1100));
    this.plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: false } },
        axes: [
          { label: this.xLabel, stroke: "#333" },
          { stroke: "#333", size: 70, values: (_u, vals) => vals.map((v) => compact(v)) },
        ],
        series: [{ label: this.xLabel }, ...this.series.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 }))],
        legend: { show: true },
      },
      data,
      this.box,
    );
  }

  destroy() {
    this.plot?.destroy();
  }
}

function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e12) return (v / 1e12).toFixed(1) + "T";
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return String(v);
}
