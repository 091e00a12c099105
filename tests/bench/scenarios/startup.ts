import type { BenchOptions } from '../options';
import type { Row } from '../report';
export async function startupScenarios(_o: BenchOptions): Promise<Row[]> { return []; }
