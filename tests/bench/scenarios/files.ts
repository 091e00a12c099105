import type { BenchOptions } from '../options';
import type { Row } from '../report';
export async function fileScenarios(_o: BenchOptions): Promise<Row[]> { return []; }
