package sandbox

import (
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes an admin kubeconfig with the credentials inlined, so it can be
// copied elsewhere, and returns the matching client configuration.
func (cp *ControlPlane) writeKubeconfig(certs *pki, server string) (*rest.Config, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: certs.path(caCertFile)}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificate: certs.path(adminCertFile),
		ClientKey:         certs.path(adminKeyFile),
	}
	cfg.Contexts["sandbox"] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: "admin"}
	cfg.CurrentContext = "sandbox"
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, err
	}
	path := filepath.Join(cp.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return nil, err
	}
	cp.kubeconfig = path
	return clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
}
