package main

import "testing"

func TestConfigFile(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--config=/etc/nodewright/config.yaml"}, "/etc/nodewright/config.yaml"},
		{[]string{"--v=2", "--config", "/c.yaml", "--leader-elect=false"}, "/c.yaml"},
		{[]string{"--authentication-kubeconfig", "/k", "--config=/c.yaml", "-v", "4"}, "/c.yaml"},
		{[]string{"--leader-elect=false"}, ""},
		{[]string{"--help"}, ""},
		{nil, ""},
	}
	for _, tc := range tests {
		if got := configFile(tc.args); got != tc.want {
			t.Errorf("configFile(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
