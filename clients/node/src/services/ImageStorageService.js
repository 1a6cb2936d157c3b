// The story's module: `src/services/ImageStorageService.js`, exporting ImageStorageService (also
// as the default export, and to require() on Node 20.19+). A game server may re-export it from
// its own src/services/ImageStorageService.js:
//   export { default } from '@picture-this/image-sidecar-client/src/services/ImageStorageService.js';
export {
  ImageStorageService,
  ImageStorageService as default,
  SidecarError,
  promptHash,
} from '../../index.js';
