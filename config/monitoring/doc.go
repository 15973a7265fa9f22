// Package monitoring holds the Grafana dashboard of the AuthStack authserver
// (grafana-dashboard.json); its test checks every query against the metrics
// the authserver registers.
package monitoring
