// Package deps pins the module's dependencies while the packages that use them
// are written; it is removed once each is imported for real.
package deps

import (
	_ "github.com/go-viper/mapstructure/v2"
	_ "github.com/influxdata/influxdb1-client/v2"
	_ "github.com/influxdata/line-protocol/v2/lineprotocol"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/common/expfmt"
	_ "github.com/spf13/pflag"
	_ "github.com/spf13/viper"
	_ "github.com/stretchr/testify/require"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "pgregory.net/rapid"
)
