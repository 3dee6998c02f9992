package v1alpha1

import corev1 "k8s.io/api/core/v1"

// PodReferencesTo returns references to pods, in order.
func PodReferencesTo(pods []*corev1.Pod) []PodReference {
	var refs []PodReference
	for _, p := range pods {
		refs = append(refs, PodReference{Namespace: p.Namespace, Name: p.Name, UID: p.UID})
	}
	return refs
}
