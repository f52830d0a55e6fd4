/**
 * Evaluating a synthesized CloudWatch alarm against what the real handlers printed: the EMF
 * documents (Powertools Metrics) of each alarm period are reduced with the alarm's statistic, for
 * the alarm's namespace, metric name and dimensions, and compared with its threshold over its
 * evaluation periods — what CloudWatch does with the same datapoints.
 */

export interface SynthesizedAlarm {
  Namespace?: string;
  MetricName?: string;
  Dimensions?: { Name: string; Value: unknown }[];
  Statistic?: string;
  Period?: number;
  Threshold: number;
  EvaluationPeriods: number;
  ComparisonOperator: string;
  Metrics?: {
    Id: string;
    Expression?: string;
    ReturnData?: boolean;
    MetricStat?: { Metric: { Namespace: string; MetricName: string }; Stat: string; Period: number };
  }[];
}

interface EmfDirective {
  Namespace: string;
  Dimensions: string[][];
  Metrics: { Name: string }[];
}

/** The values of `alarm`'s metric in the EMF documents `printed` (one JSON object a line). */
export function metricValues(alarm: SynthesizedAlarm, printed: Record<string, unknown>[]): number[] {
  const wanted = Object.fromEntries((alarm.Dimensions ?? []).map((d) => [d.Name, d.Value]));
  const values: number[] = [];
  for (const document of printed) {
    const aws = document._aws as { CloudWatchMetrics?: EmfDirective[] } | undefined;
    for (const directive of aws?.CloudWatchMetrics ?? []) {
      if (directive.Namespace !== alarm.Namespace) continue;
      if (!directive.Metrics.some((m) => m.Name === alarm.MetricName)) continue;
      // CloudWatch matches a metric by its exact dimension set.
      const matches = directive.Dimensions.some(
        (set) =>
          set.length === Object.keys(wanted).length &&
          set.every((name) => name in wanted && document[name] === wanted[name]),
      );
      if (!matches) continue;
      const value = document[alarm.MetricName as string];
      values.push(...(Array.isArray(value) ? value : [value]).map(Number));
    }
  }
  return values;
}

/** The datapoint of one period (undefined when the metric had no value: missing data). */
export function datapoint(alarm: SynthesizedAlarm, values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  switch (alarm.Statistic) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Maximum':
      return Math.max(...values);
    default:
      throw new Error(`statistic ${alarm.Statistic} is not evaluated by this helper`);
  }
}

/**
 * Whether the alarm is in ALARM after these periods (oldest first): its last EvaluationPeriods
 * datapoints all breach (GreaterThanThreshold). Missing data never breaches here (notBreaching,
 * or ignore with no earlier state).
 */
export function fires(alarm: SynthesizedAlarm, datapoints: (number | undefined)[]): boolean {
  if (alarm.ComparisonOperator !== 'GreaterThanThreshold')
    throw new Error(`comparison ${alarm.ComparisonOperator} is not evaluated by this helper`);
  const last = datapoints.slice(-alarm.EvaluationPeriods);
  return (
    last.length === alarm.EvaluationPeriods &&
    last.every((value) => value !== undefined && value > alarm.Threshold)
  );
}

/** Each period's EMF documents → whether the alarm fires. */
export function firesOn(alarm: SynthesizedAlarm, periods: Record<string, unknown>[][]): boolean {
  return fires(
    alarm,
    periods.map((printed) => datapoint(alarm, metricValues(alarm, printed))),
  );
}

/**
 * The value of a metric-math alarm's expression for one period, given each metric's datapoint by
 * id (undefined: no datapoint). Handles the functions the stack's expressions use: IF (nested),
 * FILL(m, value) and comparisons.
 */
export function evaluateExpression(
  expression: string,
  datapoints: Record<string, number | undefined>,
): number {
  let code = expression;
  for (let previous = ''; previous !== code; ) {
    previous = code;
    code = code.replace(/FILL\((\w+),\s*([\d.]+)\)/g, (_, id: string, fill: string) => {
      if (!(id in datapoints)) throw new Error(`expression uses ${id}, which has no datapoint given`);
      return String(datapoints[id] ?? Number(fill));
    });
  }
  if (/[a-z_]\w*/.test(code.replace(/IF/g, '')))
    throw new Error(`expression has parts this helper does not evaluate: ${code}`);
  const js = code.replace(/IF\(/g, 'iff(');
  const iff = (condition: boolean, a: number, b: number) => (condition ? a : b);
  return Number(new Function('iff', `return ${js};`)(iff));
}
