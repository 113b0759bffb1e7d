package collector

// FamilyType is the declared type of a metric family (# TYPE).
type FamilyType uint8

// The family types of the Prometheus text format.
const (
	Untyped FamilyType = iota
	Counter
	Gauge
	Histogram
	Summary
)

// Label is one label of a sample. Value is unescaped.
type Label struct {
	Name  []byte
	Value []byte
}

// Sample is one line of a Prometheus text exposition. Its slices point into
// the parser's buffers and are valid only until the next call to Parser.Next.
type Sample struct {
	// Family is the metric family the sample belongs to: the name of the
	// governing # TYPE line when the sample name is that name or that name plus
	// the suffix its type allows (_bucket, _sum, _count, _created; _total for
	// counters), otherwise the sample name itself (an untyped family).
	Family []byte
	Type   FamilyType
	// Name is the sample name as written (for example traefik_x_bucket).
	Name []byte
	// Labels are in the order written, le and quantile included.
	Labels []Label
	Value  float64
	// TimestampMs is the explicit timestamp, valid when HasTimestamp.
	TimestampMs  int64
	HasTimestamp bool
	// Series, when not zero, numbers the metric the sample comes from:
	// samples with the same Series are the buckets or quantiles, sum and
	// count of one metric, with its labels unchanged, the le or quantile
	// label going last. The protobuf parser knows this; the text parser
	// leaves it zero.
	Series uint64
}
