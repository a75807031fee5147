// A uPlot time series chart that follows its container's width (phone to desktop).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
  /** Shown on hover after the value: "ms", "$". */
  unit?: string;
}

interface Props {
  title: string;
  /** Bucket starts, epoch ms. */
  times: number[];
  series: Series[];
  height?: number;
}

export function Chart({ title, times, series, height = 160 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#8b96a5', grid: { stroke: '#2a3340' } },
        {
          stroke: '#8b96a5',
          grid: { stroke: '#2a3340' },
          size: 64,
          values: (_u: uPlot, splits: number[]) => splits.map(trim),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          fill: `${s.color}22`,
          // Points too: a lone bucket between empty ones has no line to draw.
          points: { show: true, size: 5 },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) =>
            v === null
              ? '–'
              : `${s.unit === '$' ? '$' : ''}${trim(v)}${s.unit && s.unit !== '$' ? ` ${s.unit}` : ''}`,
        })),
      ],
    };
    const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData;
    const plot = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [JSON.stringify(times), JSON.stringify(series), height]);
  return (
    <figure class="chart" aria-label={title}>
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}

function trim(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) < 0.001) return v.toPrecision(3);
  return String(Math.round(v * 1000) / 1000);
}
