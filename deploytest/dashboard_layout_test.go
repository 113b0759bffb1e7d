package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// layoutPanel is what Grafana needs of a panel to place it and pick its data
// source.
type layoutPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

// TestDashboardLayout checks what Grafana cannot be run here to show: panels
// have unique ids, fit the 24-column grid without overlapping, and every
// query goes to the data source the board's variable picks.
func TestDashboardLayout(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "examples", "grafana", "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	uids := map[string]bool{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			var d struct {
				UID           string        `json:"uid"`
				Title         string        `json:"title"`
				SchemaVersion int           `json:"schemaVersion"`
				Panels        []layoutPanel `json:"panels"`
				Templating    struct {
					List []struct {
						Name  string `json:"name"`
						Type  string `json:"type"`
						Query any    `json:"query"`
					} `json:"list"`
				} `json:"templating"`
			}
			require.NoError(t, json.Unmarshal(raw, &d))
			require.NotEmpty(t, d.Title)
			require.NotEmpty(t, d.UID)
			require.LessOrEqual(t, len(d.UID), 40, "Grafana refuses longer uids")
			require.False(t, uids[d.UID], "uid %s used twice", d.UID)
			uids[d.UID] = true
			require.Positive(t, d.SchemaVersion)

			require.NotEmpty(t, d.Templating.List)
			require.Equal(t, "datasource", d.Templating.List[0].Type)
			require.Equal(t, "influxdb", d.Templating.List[0].Query)
			dsVar := "${" + d.Templating.List[0].Name + "}"

			ids := map[int]bool{}
			cells := map[[2]int]int{}
			for _, p := range d.Panels {
				require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
				ids[p.ID] = true
				g := p.GridPos
				require.Positive(t, g.W, "panel %q", p.Title)
				require.Positive(t, g.H, "panel %q", p.Title)
				require.LessOrEqual(t, g.X+g.W, 24, "panel %q is wider than the grid", p.Title)
				for x := g.X; x < g.X+g.W; x++ {
					for y := g.Y; y < g.Y+g.H; y++ {
						other, taken := cells[[2]int{x, y}]
						require.False(t, taken, "panels %d and %d overlap", other, p.ID)
						cells[[2]int{x, y}] = p.ID
					}
				}
				if p.Type == "row" {
					continue
				}
				require.NotNil(t, p.Datasource, "panel %q", p.Title)
				require.Equal(t, dsVar, p.Datasource.UID, "panel %q", p.Title)
				require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
				for _, tg := range p.Targets {
					require.NotNil(t, tg.Datasource, "panel %q", p.Title)
					require.Equal(t, dsVar, tg.Datasource.UID, "panel %q", p.Title)
				}
			}
		})
	}
}
