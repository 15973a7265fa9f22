// Command kubectl-authstack is the `kubectl authstack` plugin (internal/kubectlplugin):
// install it on your PATH (make install-plugin) and run `kubectl authstack status NAME`.
package main

import "github.com/leanauth/authstack/internal/kubectlplugin"

func main() { kubectlplugin.Main() }
